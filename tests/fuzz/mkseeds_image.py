#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""mkseeds_image.py - write the seed corpus of tests/fuzz/fuzz_image.c.

  mkseeds_image.py FUZZ_IMAGE_BINARY OUT_DIR

Every seed is one mode byte (see fuzz_image.c) and the file(s). The images
are built here (VHD) or by qemu-img and compacted (VHDX: qemu-img's smallest
VHDX is ~9 MiB of zeros; its regions are moved into the first 320 KiB,
which libvhdi needs whole), then corrupt and truncated variants are derived. Needs qemu-img
and tests/mkvhd.py (same folder's parent).
"""
import os
import random
import struct
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import mkvhd  # noqa: E402

SECTOR = 512


def vhd_footer(size, dtype, uid, data_offset):
    f = bytearray(SECTOR)
    f[0:8] = b'conectix'
    struct.pack_into('>IIQI4sI4sQQ', f, 8, 2, 0x00010000, data_offset, 0x2a000000,
                     b'rfs ', 0x00010000, b'Wi2k', size, size)
    f[56:60] = mkvhd.chs(size)
    struct.pack_into('>I', f, 60, dtype)
    f[68:84] = uid
    struct.pack_into('>I', f, 64, mkvhd.vhd_checksum(f))
    return f


def vhd_fixed(data, uid):
    return bytes(data) + vhd_footer(len(data), 2, uid, 0xFFFFFFFFFFFFFFFF)


def vhd_dynamic(data, bs, uid, rng):
    """VHD dynamic: blocks that are all zero are left out of the BAT."""
    size = len(data)
    nblocks = -(-size // bs)
    bitmap_size = -(-(bs // SECTOR) // (8 * SECTOR)) * SECTOR
    bat_bytes = -(-nblocks * 4 // SECTOR) * SECTOR
    footer = vhd_footer(size, 3, uid, SECTOR)
    dyn = bytearray(1024)
    dyn[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', dyn, 8, 0xFFFFFFFFFFFFFFFF, 3 * SECTOR, 0x00010000, nblocks, bs)
    struct.pack_into('>I', dyn, 36, mkvhd.vhd_checksum(dyn))
    off = 3 * SECTOR + bat_bytes
    bat, blocks = [], bytearray()
    for b in range(nblocks):
        chunk = data[b * bs:(b + 1) * bs]
        if not any(chunk):
            bat.append(0xFFFFFFFF)
            continue
        bat.append((off + len(blocks)) // SECTOR)
        blocks += b'\xff' * (bs // SECTOR // 8) + bytes(bitmap_size - bs // SECTOR // 8)
        blocks += chunk.ljust(bs, b'\0')
    return bytes(footer + dyn + b''.join(struct.pack('>I', e) for e in bat).ljust(bat_bytes, b'\xff')
                 + blocks + footer)


def vhd_refit(img, parent_uid=None, name_from=None, name_to=None):
    """Patch a VHD dynamic/differencing file: its parent identifier, the
    parent's name (same length), and fix every checksum."""
    img = bytearray(img)
    dyn_off = struct.unpack_from('>Q', img, 16)[0]
    if name_from:
        for enc in ('utf-16-le', 'utf-16-be'):
            img = bytearray(bytes(img).replace(name_from.encode(enc), name_to.encode(enc)))
    if parent_uid is not None:
        img[dyn_off + 40:dyn_off + 56] = parent_uid
    struct.pack_into('>I', img, dyn_off + 36, 0)
    struct.pack_into('>I', img, dyn_off + 36, mkvhd.vhd_checksum(img[dyn_off:dyn_off + 1024]))
    return bytes(img)


def vhd_uid(img):
    return bytes(img[-SECTOR + 68:-SECTOR + 84])


def vhd_set_footers(img, fn):
    """Apply fn(footer bytearray) to both footer copies and fix their checksums."""
    img = bytearray(img)
    offs = [len(img) - SECTOR]
    if img[0:8] == b'conectix':
        offs.append(0)
    for o in offs:
        f = bytearray(img[o:o + SECTOR])
        fn(f)
        struct.pack_into('>I', f, 64, 0)
        struct.pack_into('>I', f, 64, mkvhd.vhd_checksum(f))
        img[o:o + SECTOR] = f
    return bytes(img)


def vhdx_compact(src, bat_state=None, bat_mb=None, length=320 * 1024):
    """qemu-img's VHDX with its regions moved into the unused space of the
    first 320 KiB (offsets MS-VHDX wants 1 MiB aligned; libvhdi does not
    care): metadata table at 4 KiB with its items 64 KiB further (just after
    header 1), BAT at 72 KiB, an empty log at 76 KiB. Optionally set BAT entry 0 to @bat_state at @bat_mb MiB.
    Returns the first @length bytes."""
    d = bytearray(open(src, 'rb').read())
    new = bytearray(d[:320 * 1024])
    places = {}
    for off in (192 * 1024, 256 * 1024):
        cnt = struct.unpack_from('<I', d, off + 8)[0]
        for i in range(cnt):
            e = off + 16 + 32 * i
            guid, fo, ln, req = struct.unpack_from('<16sQII', d, e)
            if guid.hex() == '6677c22d23f600429d64115e9bfd4a08':   # BAT
                places['bat'] = (fo, 73728, 4096)
            else:                                                   # metadata
                places['meta'] = (fo, 4096, 69632)
            key = 'bat' if guid.hex() == '6677c22d23f600429d64115e9bfd4a08' else 'meta'
            struct.pack_into('<QI', new, e + 16, places[key][1], places[key][2])
        struct.pack_into('<I', new, off + 4, 0)
        struct.pack_into('<I', new, off + 4, mkvhd.crc32c(bytes(new[off:off + 64 * 1024])))
    old, at, _ = places['bat']
    new[at:at + 4096] = d[old:old + 4096]
    old, at, _ = places['meta']
    new[at:at + 4096] = d[old:old + 4096]              # the table
    new[at + 65536:at + 69632] = d[old + 65536:old + 69632]  # its items
    bat = 73728
    if bat_state is not None:
        e = struct.unpack_from('<Q', new, bat)[0]
        mb = (e >> 20) if bat_mb is None else bat_mb
        struct.pack_into('<Q', new, bat, (mb << 20) | bat_state)
    for off in (64 * 1024, 128 * 1024):
        struct.pack_into('<IQ', new, off + 68, 4096, 77824)
        struct.pack_into('<I', new, off + 4, 0)
        struct.pack_into('<I', new, off + 4, mkvhd.crc32c(bytes(new[off:off + 4096])))
    return bytes(new[:length])

def main():
    fuzz, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20240601)
    seeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        def path(n):
            return os.path.join(tmp, n)

        # the fuzzer's built-in parent (mode 1): a child over it must match it
        env = dict(os.environ, RFS_FUZZ_IMAGE_PARENT=path('p.vhd'))
        subprocess.run([fuzz], env=env, check=True)
        p = open(path('p.vhd'), 'rb').read()

        data16 = bytes(rng.getrandbits(8) for _ in range(16 * 1024))
        fixed = vhd_fixed(data16, uuid.UUID(int=rng.getrandbits(128)).bytes)
        sparse = bytearray(32 * 1024)
        sparse[4096:8192] = bytes(rng.getrandbits(8) for _ in range(4096))
        sparse[-700:] = bytes(rng.getrandbits(8) for _ in range(700))
        dyn = vhd_dynamic(bytes(sparse), 4096, uuid.UUID(int=rng.getrandbits(128)).bytes, rng)

        # mode 0: one file
        seeds['vhd_fixed'] = b'\0' + fixed
        seeds['vhd_dynamic'] = b'\0' + dyn
        seeds['vhd_dynamic_as_vhdx_name'] = b'\x40' + dyn
        seeds['vhd_dynamic_truncated'] = b'\0' + dyn[:-SECTOR]
        seeds['vhd_dynamic_cut_block'] = b'\0' + dyn[:len(dyn) // 2] + dyn[-SECTOR:]
        seeds['vhd_fixed_bad_checksum'] = b'\0' + fixed[:-SECTOR + 64] + b'\xde\xad\xbe\xef' + fixed[-SECTOR + 68:]
        seeds['vhd_fixed_size_too_big'] = b'\0' + vhd_set_footers(
            fixed, lambda f: struct.pack_into('>QQ', f, 40, 1 << 40, 1 << 40))
        seeds['vhd_fixed_size_odd'] = b'\0' + vhd_set_footers(
            fixed, lambda f: struct.pack_into('>QQ', f, 40, 1000, 1000))
        seeds['vhd_dynamic_block_size_0'] = b'\0' + bytes(
            bytearray(dyn[:SECTOR + 32]) + b'\0\0\0\0' + dyn[SECTOR + 36:])
        seeds['vhd_dynamic_bat_beyond_eof'] = b'\0' + dyn[:3 * SECTOR] + b'\x7f\xff\xff\xf0' + dyn[3 * SECTOR + 4:]
        seeds['empty'] = b'\0'
        seeds['footer_only'] = b'\0' + fixed[-SECTOR:]
        seeds['garbage'] = b'\0' + b'conectix' + bytes(rng.getrandbits(8) for _ in range(600))

        # VHDX (qemu-img, compacted)
        raw = path('r.raw')
        with open(raw, 'wb') as f:
            f.write(bytes(rng.getrandbits(8) for _ in range(64 * 1024)))
        subprocess.run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'vhdx', '-o',
                        'subformat=dynamic,block_size=1M', raw, path('x.vhdx')], check=True)
        vx_data = vhdx_compact(path('x.vhdx'), bat_state=6, bat_mb=0)
        seeds['vhdx_dynamic'] = b'\x40' + vx_data
        seeds['vhdx_sparse_truncated'] = b'\x40' + vhdx_compact(path('x.vhdx'), bat_state=0,
                                                                length=68 * 1024)
        with open(path('dirty.vhdx'), 'wb') as f:
            f.write(vx_data)
        subprocess.run([sys.executable, os.path.join(os.path.dirname(mkvhd.__file__), 'mkvhd.py'),
                        'vhdx-dirty-log', path('dirty.vhdx')], check=True)
        seeds['vhdx_dirty_log'] = b'\x40' + open(path('dirty.vhdx'), 'rb').read()

        # mode 1: VHD differencing children over the built-in parent
        def diff(parent_name, parent_bytes, child, seed, bs):
            with open(path(parent_name), 'wb') as f:
                f.write(parent_bytes)
            mkvhd.make_diff(path(parent_name), path(child), seed, bs)
            return open(path(child), 'rb').read()

        child = diff('p.vhd', p, 'c.vhd', 1, 4096)
        seeds['diff_over_builtin'] = b'\x01' + child
        seeds['diff_over_builtin_truncated'] = b'\x01' + child[:len(child) - 3 * SECTOR]
        seeds['diff_over_builtin_wrong_parent_id'] = b'\x01' + vhd_refit(child, parent_uid=bytes(16))
        seeds['fixed_over_builtin'] = b'\x01' + fixed

        # mode 2: its own parent (identifier and locator name itself: f.vhd)
        seeds['diff_own_parent'] = b'\x02' + vhd_refit(child, parent_uid=vhd_uid(child),
                                                       name_from='p.vhd', name_to='f.vhd')

        # mode 3: a over b. A valid chain (b fixed), then a loop (each the
        # other's parent). Bytes 1-2: the length of a.
        small = vhd_fixed(data16, uuid.UUID(int=rng.getrandbits(128)).bytes)
        a = diff('b.vhd', small, 'a.vhd', 2, 4096)
        seeds['chain_a_over_b'] = b'\x03' + struct.pack('<H', len(a)) + a + small
        a2 = diff('x.vhd', small, 'a.vhd', 3, 4096)
        b2 = diff('y.vhd', small, 'b.vhd', 4, 4096)
        a2 = vhd_refit(a2, parent_uid=vhd_uid(b2), name_from='x.vhd', name_to='b.vhd')
        b2 = vhd_refit(b2, parent_uid=vhd_uid(a2), name_from='y.vhd', name_to='a.vhd')
        seeds['loop_a_b'] = b'\x03' + struct.pack('<H', len(a2)) + a2 + b2
        seeds['loop_a_b_vhdx_names'] = b'\x43' + struct.pack('<H', len(a2)) + a2 + b2

    for name, data in sorted(seeds.items()):
        assert len(data) <= 1048576, name
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d seeds, %d bytes' % (len(seeds), sum(len(d) for d in seeds.values())))


if __name__ == '__main__':
    main()
