/** Writes tar headers byte by byte, for hostile .tar.gz archives tar libraries would not produce. */

/** A ustar header block: a regular file of `size` bytes, or a link (`type` 1 hard, 2 symbolic) to `linkname`. */
export function tarHeader(name: string, size: number, type: '0' | '1' | '2' = '0', linkname = ''): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write(type, 156);
  header.write(linkname, 157);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** One entry: its header, its bytes padded to a 512-byte block. */
export function tarEntry(name: string, data: Buffer, type: '0' | '1' | '2' = '0', linkname = ''): Buffer {
  const size = type === '0' ? data.length : 0;
  return Buffer.concat([
    tarHeader(name, size, type, linkname),
    type === '0' ? data : Buffer.alloc(0),
    Buffer.alloc((512 - (size % 512)) % 512),
  ]);
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(1024);
