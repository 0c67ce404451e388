#!/usr/bin/env bash
# Kiln on a GPU in one call of the device tool (issue #16). On the device machine, which has no
# node and reaches no registry, it unpacks what scripts/gpu-pack.sh put in .gpu/ into /tmp (node,
# the build with its runtime node_modules, the Vulkan loader's .debs), then runs scripts/gpu-check.mjs:
# the provider probe, in-process session.run on the GPU at batch 1/8/32, kiln serve with batching as
# a ratio of it, and the GPU's outputs against the CPU's. Everything printed also goes to
# $OUT/gpu-check.txt, and the figures to $OUT/gpu-check.json, when $OUT is set.
#
#   bash scripts/gpu-check.sh                              # the GPU check: cuda and webgpu, each that loads
#   KILN_GPU_CHECK_PROVIDER=webgpu bash scripts/gpu-check.sh
#   KILN_GPU_CHECK_PROVIDER=cpu bash scripts/gpu-check.sh  # a rehearsal on the CPU, short windows, no GPU
#
# In a built checkout with node >= 20.6 on PATH it runs in place and unpacks nothing.
# KILN_GPU_CHECK_UNPACK=1 runs from .gpu/ all the same (to try a pack here, carried node included);
# KILN_GPU_CHECK_WORK is where to unpack (default /tmp/kiln-gpu-check). The other KILN_GPU_CHECK_*
# settings are gpu-check.mjs's (see its header). Exit status: gpu-check.mjs's (0 every check passed,
# 1 one failed, 2 not run), or 2 when there is nothing to run it with.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pack=$repo/.gpu
provider=${KILN_GPU_CHECK_PROVIDER:-auto}
work=${KILN_GPU_CHECK_WORK:-/tmp/kiln-gpu-check}
deadline=${KILN_GPU_CHECK_DEADLINE:-360}
root=$repo

say() { printf '%s\n' "$*"; }
die() {
  say "gpu-check: $*"
  exit 2
}

# node on PATH, at least 20.6 (the packages' engines).
node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 6) ? 0 : 1)' 2>/dev/null
}

# A .xz file to stdout: with xz, or with Python's lzma where xz is missing.
unxz() {
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# What the build was made from: gpu-pack.sh writes it to the manifest, and a mismatch means that
# the dist/ in .gpu is older than the sources that travelled.
sources_hash() {
  (cd "$1" && find packages/*/src packages/*/package.json -type f ! -name '*.test.ts' -print0 | LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-16)
}

setup_runtime() {
  say "== setup =="
  if [[ ${KILN_GPU_CHECK_UNPACK:-} != 1 ]] && node_ok && [[ -f $repo/packages/cli/dist/main.js && -d $repo/node_modules/onnxruntime-node ]]; then
    say "running in place in $repo (node $(node --version), a built checkout)"
    return
  fi
  [[ -f $pack/manifest.txt ]] ||
    die "there is no node >= 20.6 with a built checkout here, and no $pack/manifest.txt: run scripts/gpu-pack.sh where npm works, and carry .gpu"
  root=$work/kiln
  rm -rf "$root"
  mkdir -p "$root/.bin" || die "cannot create $root"
  if [[ ${KILN_GPU_CHECK_UNPACK:-} == 1 ]] || ! node_ok; then
    unxz "$pack/node.xz" >"$root/.bin/node" || die "cannot unpack $pack/node.xz"
    chmod +x "$root/.bin/node"
    export PATH=$root/.bin:$PATH
    node_ok || die "the carried node does not run here: $(node --version 2>&1 | head -1)"
    say "node: carried, $(node --version)"
  else
    say "node: $(command -v node), $(node --version)"
  fi
  # The sources as they travelled (not what gpu-pack.sh saw), then the build and node_modules.
  tar -C "$repo" --exclude=./.gpu --exclude=./.git --exclude=./node_modules --exclude=./bench/out --exclude=./.tmp \
    --exclude=./test/artifacts --exclude=./dist-packages --exclude=./.kiln --exclude=dist -cf - . | tar -C "$root" -xf - ||
    die "cannot copy the checkout to $root"
  unxz "$pack/runtime.tar.xz" | tar -C "$root" -xf - || die "cannot unpack $pack/runtime.tar.xz"
  say "unpacked .gpu into $root ($(du -sh "$root" | cut -f1))"
  local packed
  packed=$(sed -n 's/^sources: //p' "$pack/manifest.txt")
  if [[ $packed != "$(sources_hash "$repo")" ]]; then
    say "WARNING: .gpu/runtime.tar.xz was built from other sources than these (rerun scripts/gpu-pack.sh): the figures are the packed build's"
  fi
}

# WebGPU runs on Vulkan: the device machine has NVIDIA's Vulkan driver but no loader
# (libvulkan.so.1), so the .debs gpu-pack.sh fetched are unpacked as /work/.library/device/README.md
# says. Only on a machine with nvidia-smi: elsewhere nothing is installed.
setup_vulkan() {
  [[ $provider == cpu ]] && return
  say "== Vulkan loader (for webgpu) =="
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    say "no nvidia-smi here: not a GPU machine; the Vulkan loader is left as it is"
    return
  fi
  nvidia-smi --version 2>/dev/null | sed 's/^/nvidia-smi: /'
  # Each package's library, so that none already installed (a newer glvnd, say) is overwritten.
  local -A provides=([libvulkan1]=libvulkan.so.1 [libglvnd0]=libGLdispatch.so.0 [libegl1]=libEGL.so.1 [libgl1]=libGL.so.1
    [libglx0]=libGLX.so.0 [libgles2]=libGLESv2.so.2 [libopengl0]=libOpenGL.so.0)
  local f name todo=()
  for f in "$pack"/debs/*.deb; do
    [[ -e $f ]] || continue
    name=$(basename "$f")
    name=${name%%_*}
    if ! ldconfig -p 2>/dev/null | grep -q "${provides[$name]:-$name}\b"; then todo+=("$f"); fi
  done
  if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
    say "Vulkan loader: $(ldconfig -p | grep -m1 'libvulkan\.so\.1 ' | sed 's/^[[:space:]]*//')"
  elif [[ ! -e $pack/debs ]]; then
    say "no Vulkan loader here and no $pack/debs: webgpu will not load"
  fi
  if ((${#todo[@]} == 0)); then
    :
  elif ! command -v dpkg >/dev/null 2>&1; then
    say "no dpkg to unpack $pack/debs: webgpu will not load unless the libraries are there"
  elif [[ $(id -u) == 0 ]]; then
    for f in "${todo[@]}"; do dpkg -x "$f" /; done
    ldconfig
    say "unpacked into / (the device README's way): $(basename -a "${todo[@]}" | tr '\n' ' ')"
  else
    mkdir -p "$work/debs"
    for f in "${todo[@]}"; do dpkg -x "$f" "$work/debs"; done
    export LD_LIBRARY_PATH=$work/debs/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    say "unpacked into $work/debs (not root), on LD_LIBRARY_PATH: $(basename -a "${todo[@]}" | tr '\n' ' ')"
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [[ -z ${VK_DRIVER_FILES:-} && -f $icd ]] && ! compgen -G '/usr/share/vulkan/icd.d/nvidia_icd*.json' >/dev/null &&
    ! compgen -G '/etc/vulkan/icd.d/nvidia_icd*.json' >/dev/null; then
    export VK_DRIVER_FILES=$icd
    say "VK_DRIVER_FILES=$icd (the driver's ICD is only there)"
  fi
  if [[ -z ${__EGL_VENDOR_LIBRARY_FILENAMES:-} && -f $egl ]]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
}

main() {
  say "Kiln GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), provider: $provider"
  setup_runtime
  setup_vulkan
  if [[ $provider != cpu ]]; then
    say "== kiln doctor =="
    timeout 60 node "$root/packages/cli/bin/kiln.js" doctor 2>&1 || say "(kiln doctor exited $?)"
  fi
  # The check stops itself at its deadline with a summary; this is the backstop if it cannot.
  local status=0
  timeout --kill-after=10 "$((deadline + 30))" node "$root/scripts/gpu-check.mjs" || status=$?
  # 0, 1 and 2 are the check's own answers; anything else means node itself died (a native crash
  # in a GPU provider, the backstop above), and what was printed up to then is all there is.
  if ((status > 2)); then
    say "gpu-check: node ended with status $status (a signal, or the timeout) before its summary; the output above is all there is"
    return 1
  fi
  return "$status"
}

if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  export KILN_GPU_CHECK_JSON=${KILN_GPU_CHECK_JSON:-$OUT/gpu-check.json}
  main 2>&1 | tee "$OUT/gpu-check.txt"
  exit "${PIPESTATUS[0]}"
fi
main
