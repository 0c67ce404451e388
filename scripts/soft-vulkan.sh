#!/usr/bin/env bash
# A software Vulkan driver for onnxruntime-node's WebGPU provider, so that Kiln's GPU path (a
# provider that is not the CPU's, fallback: false, describe and metrics on a GPU provider, outputs
# against the CPU's) runs for real on a machine without a GPU: Mesa's lavapipe and the Vulkan
# loader, unpacked from Debian's packages into .tmp/soft-vulkan. Nothing is installed system-wide,
# so the machine's own Vulkan setup (none, on CI) is what every other test sees.
#
#   bash scripts/soft-vulkan.sh                  # unpack (once; kept in .tmp/soft-vulkan)
#   bash scripts/soft-vulkan.sh --install-deps   # also apt-get install the libraries lavapipe links to (root or sudo; .ci/run)
#   . .tmp/soft-vulkan/env                       # then anything started from this shell uses it
#
# Dawn (WebGPU's engine) needs Vulkan features that lavapipe gained in Mesa 24: where the configured
# sources have an older mesa-vulkan-drivers (Debian 12 has 22.3), the one from bookworm-backports is
# taken, from $KILN_DEBIAN_MIRROR (default: the mirror apt is configured with, else
# http://deb.debian.org/debian). It writes .tmp/soft-vulkan/env
# (LD_LIBRARY_PATH and VK_ICD_FILENAMES) and prints it; test/server/webgpu.test.ts reads it.
# Exit status 0 when lavapipe is ready, 1 when it could not be set up (the reason is printed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${KILN_SOFT_VULKAN_DIR:-$repo/.tmp/soft-vulkan}
# The Debian mirror apt is configured with (a deb822 URIs: line, or a one-line deb entry), else Debian's own.
configured_mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -oE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' |
    grep -oE 'https?://[^[:space:]]+' | sed 's|/$||' | head -n 1 || true
}
mirror=${KILN_DEBIAN_MIRROR:-$(configured_mirror)}
mirror=${mirror:-http://deb.debian.org/debian}
install_deps=${1:-}

fail() {
  printf 'soft-vulkan: %s\n' "$*" >&2
  exit 1
}

if [[ -f $dest/env && -f $dest/lib/libvulkan_lvp.so && -z $install_deps ]]; then
  cat "$dest/env"
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then fail "this needs Debian's apt-get and dpkg-deb"; fi
[[ $(dpkg --print-architecture) == amd64 ]] || fail "only amd64 is prepared (this machine is $(dpkg --print-architecture))"

sudo=$([[ $(id -u) -eq 0 ]] || echo sudo)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download runs as any user (as root it warns that its sandbox user cannot write here).
download() { timeout 120 apt-get download libvulkan1 mesa-vulkan-drivers >/dev/null 2>&1; }
if ! download; then
  [[ $install_deps == --install-deps ]] || fail "apt-get download libvulkan1 mesa-vulkan-drivers failed (run apt-get update?)"
  $sudo apt-get update -qq || fail "apt-get update failed"
  download || fail "apt-get download libvulkan1 mesa-vulkan-drivers failed, after apt-get update"
fi

mesa=$(ls mesa-vulkan-drivers_*.deb)
major=$(dpkg-deb -f "$mesa" Version | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/')
if ((major < 24)); then
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ $codename == bookworm ]] ||
    fail "mesa-vulkan-drivers here is $(dpkg-deb -f "$mesa" Version); Dawn needs Mesa 24 or later, and only Debian 12's backports are known"
  rm -f "$mesa"
  index=$mirror/dists/bookworm-backports/main/binary-amd64/Packages.xz
  timeout 120 curl -fsS "$index" -o Packages.xz || fail "cannot fetch $index"
  path=$(xz -dc Packages.xz | awk '/^Package: /{p=($2=="mesa-vulkan-drivers")} p && !found && /^Filename: /{print $2; found=1}')
  [[ -n $path ]] || fail "bookworm-backports has no mesa-vulkan-drivers"
  timeout 300 curl -fsS "$mirror/$path" -o mesa-backports.deb || fail "cannot fetch $mirror/$path"
  mesa='mesa-backports.deb'
fi

if [[ $install_deps == --install-deps ]]; then
  # What lavapipe links to, from the package's own Depends, versions dropped: the machine's own
  # versions do (lavapipe draws, and asks libdrm for nothing on the CPU).
  deps=$(dpkg-deb -f "$mesa" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/^ +| +$//g' | grep -v '^libvulkan1$' | grep -v '^$')
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $deps >/dev/null || fail "apt-get install of lavapipe's libraries failed: $deps"
fi

for deb in libvulkan1_*.deb "$mesa"; do dpkg-deb -x "$deb" root; done
rm -rf "$dest"
mkdir -p "$dest/lib"
cp -P root/usr/lib/x86_64-linux-gnu/libvulkan.so.1* root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so "$dest/lib/"
cat >"$dest/lvp_icd.json" <<EOF
{
  "file_format_version": "1.0.0",
  "ICD": { "library_path": "$dest/lib/libvulkan_lvp.so", "api_version": "1.3.0" }
}
EOF
missing=$(ldd "$dest/lib/libvulkan_lvp.so" | awk '/not found/{print $1}' | tr '\n' ' ')
[[ -z $missing ]] || fail "lavapipe needs libraries this machine lacks: $missing(run it again with --install-deps)"
{
  # shellcheck disable=SC2016 # the variable is expanded where the file is sourced
  printf 'export LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' "$dest/lib"
  printf 'export VK_ICD_FILENAMES=%s\n' "$dest/lvp_icd.json"
  printf '# Mesa %s (lavapipe), libvulkan1 %s\n' "$(dpkg-deb -f "$mesa" Version)" "$(dpkg-deb -f libvulkan1_*.deb Version)"
} >"$dest/env"
cat "$dest/env"
