#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on the device machine into .gpu/ (gitignored), to be carried
# there: that machine has no node and reaches no registry. Run it here, where npm and apt work:
#
#   scripts/gpu-pack.sh            build, pack what changed since the last run, print the device call
#   scripts/gpu-pack.sh --dry-run  print the plan and the sizes; build, compress and fetch nothing
#
# .gpu/ holds: node.xz (this machine's node, an x86-64 Linux build); runtime.tar.xz (the packages'
# dist/ and the node_modules that serving loads, npm's production tree less esbuild's binary,
# sharp, other platforms' ONNX Runtime binaries and type declarations); debs/ (the Vulkan loader
# and glvnd, which WebGPU needs, as the device README says); manifest.txt (versions, sizes, and a
# hash of the sources the build was made from). No model is packed: the check writes its conv net
# and archives it on the device in a second, which is 14 MB less to carry.
# It fails when the working tree that travels plus .gpu/ would pass 60 MiB (the tool's limit is 64).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=.gpu
limit_mib=60
dry=0
case ${1:-} in
  '') ;;
  --dry-run) dry=1 ;;
  *)
    echo "usage: scripts/gpu-pack.sh [--dry-run], received \"$1\"" >&2
    exit 2
    ;;
esac
debs=(libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0)
xz_opts=(-6 -T2)

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
size_of() { if [[ -e $1 ]]; then du -sb "$1" | cut -f1; else echo 0; fi; }
step() { printf '%-9s %s\n' "$1" "$2"; }
# Same hash as gpu-check.sh's: the sources that a build in .gpu was made from.
sources_hash() {
  find packages/*/src packages/*/package.json -type f ! -name '*.test.ts' -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-16
}
stamp_of() { sed -n "s/^$1: //p" "$out/manifest.txt" 2>/dev/null || true; }

# 1. The build.
if ((dry)); then
  step build "would run npm run build"
else
  build_log=$(npm run build --silent 2>&1) || {
    printf '%s\n' "$build_log" >&2
    echo "gpu-pack: npm run build failed (above); nothing was packed" >&2
    exit 1
  }
  step build "npm run build: done"
fi

# 2. node.
node_bin=$(command -v node)
node_version=$(node --version)
if [[ $(uname -m) != x86_64 ]]; then
  ((dry)) && step node "this machine is $(uname -m): a pack needs an x86-64 node (the device's), so only the plan is shown"
  ((dry)) || {
    echo "gpu-pack: this machine is $(uname -m); the device is x86-64, and the node packed must be x86-64" >&2
    exit 1
  }
fi
node_stamp="$node_version $(size_of "$node_bin")"
if [[ -f $out/node.xz && $(stamp_of node-stamp) == "$node_stamp" ]]; then
  step node "up to date ($node_version)"
elif ((dry)); then
  step node "would compress $node_bin ($node_version, $(mib "$(size_of "$node_bin")"))"
else
  mkdir -p "$out"
  xz "${xz_opts[@]}" -c "$node_bin" >"$out/node.xz.part" && mv "$out/node.xz.part" "$out/node.xz"
  step node "$node_bin ($node_version) → $out/node.xz, $(mib "$(size_of "$out/node.xz")")"
fi

# 3. The runtime: dist/ and npm's production tree, each package once (a nested one travels with its parent).
mapfile -t modules < <(npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$repo/||" | grep '^node_modules/' |
  grep -Ev '^node_modules/(@esbuild/|sharp$|@img/|@types/)' | LC_ALL=C sort -u |
  awk '{ for (i = 1; i <= n; i++) if (index($0, kept[i] "/") == 1) next; kept[++n] = $0; print }')
((${#modules[@]} > 50)) || {
  echo "gpu-pack: npm ls listed ${#modules[@]} production packages; run npm ci first" >&2
  exit 1
}
# esbuild stays for its JavaScript API (kiln archive imports it), without its 11 MB binary: the
# built-in tensor handler the check archives is never bundled. sharp loads only for images.
excludes=(
  --exclude=node_modules/onnxruntime-node/bin/napi-v6/darwin --exclude=node_modules/onnxruntime-node/bin/napi-v6/win32
  --exclude=node_modules/onnxruntime-node/bin/napi-v6/linux/arm64 --exclude=node_modules/esbuild/bin
  --exclude='node_modules/*/protobufjs/cli' --exclude=node_modules/protobufjs/cli
  --exclude='*.map' --exclude='*.d.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='node_modules/*.md'
  --exclude='*.tsbuildinfo'
)
runtime_paths=(packages/handler-sdk/dist packages/server/dist packages/cli/dist "${modules[@]}")
# Without times or owners, the archive is a function of the files' contents: a build that rewrites
# files unchanged (compile-schemas, copy-assets) leaves the stamp, and a rerun packs nothing.
tar_c=(tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner "${excludes[@]}" -cf -)
runtime_stamp=$("${tar_c[@]}" "${runtime_paths[@]}" | sha256sum | cut -c1-16)
if [[ -f $out/runtime.tar.xz && $(stamp_of runtime-stamp) == "$runtime_stamp" ]]; then
  step runtime "up to date (${#modules[@]} packages)"
elif ((dry)); then
  step runtime "would pack the 3 dist folders and ${#modules[@]} packages"
else
  mkdir -p "$out"
  "${tar_c[@]}" "${runtime_paths[@]}" | xz "${xz_opts[@]}" >"$out/runtime.tar.xz.part"
  mv "$out/runtime.tar.xz.part" "$out/runtime.tar.xz"
  step runtime "${#modules[@]} packages and the build → $out/runtime.tar.xz, $(mib "$(size_of "$out/runtime.tar.xz")")"
fi

# 4. The Vulkan loader's .debs (Debian's; glibc 2.36 or later runs them).
missing=()
for d in "${debs[@]}"; do compgen -G "$out/debs/${d}_*.deb" >/dev/null || missing+=("$d"); done
if ((${#missing[@]} == 0)); then
  step debs "up to date (${debs[*]})"
elif ((dry)); then
  step debs "would apt-get download ${missing[*]}"
else
  mkdir -p "$out/debs"
  (cd "$out/debs" && apt-get download "${missing[@]}" >/dev/null 2>&1) || {
    # No package lists yet: the device README's way, with lists of their own in /tmp.
    o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
    mkdir -p /tmp/amd64/partial
    apt-get "${o[@]}" update >/dev/null && (cd "$out/debs" && apt-get "${o[@]}" download "${missing[@]}" >/dev/null)
  }
  step debs "apt-get download ${missing[*]}: $(mib "$(size_of "$out/debs")")"
fi

# 5. The manifest, and what the call would send.
if ((!dry)); then
  {
    echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) by scripts/gpu-pack.sh"
    echo "sources: $(sources_hash)"
    echo "node-stamp: $node_stamp"
    echo "runtime-stamp: $runtime_stamp"
    echo "packages: ${#modules[@]}"
    for f in node.xz runtime.tar.xz debs; do echo "size: $f $(size_of "$out/$f")"; done
  } >"$out/manifest.txt"
fi

# What travels besides .gpu: every file git would not ignore. Patterns from .gitignore and
# .git/info/exclude are read here (git itself is not asked); negations are not, so the figure errs high.
prune=()
while read -r p; do
  [[ -z $p || $p == \#* || $p == \!* ]] && continue
  p=${p%/}
  if [[ $p == */* ]]; then prune+=(-o -path "./${p#/}"); else prune+=(-o -name "$p"); fi
done < <(cat .gitignore .git/info/exclude 2>/dev/null)
tree=$(find . \( -path ./.git -o -path "./$out" "${prune[@]}" \) -prune -o -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
carry=$(size_of "$out")
total=$((tree + carry))

echo
for f in node.xz runtime.tar.xz debs manifest.txt; do printf '  %-16s %s\n' "$f" "$(mib "$(size_of "$out/$f")")"; done
printf '  %-16s %s\n' ".gpu in all" "$(mib "$carry")" "working tree" "$(mib "$tree") (files git would not ignore)" \
  "together" "$(mib "$total") of the $limit_mib MiB this script allows (the tool's limit: 64 MiB)"
if ((dry)); then
  echo "(dry run: the sizes are those of .gpu as it is now)"
fi
if ((total > limit_mib * 1048576)); then
  echo "gpu-pack: the working tree and .gpu come to $(mib "$total"), over $limit_mib MiB: leave something out" >&2
  exit 1
fi
cat <<'EOF'

The device call (one run; expect about 2 minutes there, most of it the GPU's windows):
  run  command: bash scripts/gpu-check.sh
       carry:   [".gpu"]
       timeout_s: 540
The report comes back as gpu-check.txt and gpu-check.json ($OUT). Set KILN_GPU_CHECK_PROVIDER=webgpu
or cuda in front of the command to check one provider only.
EOF
