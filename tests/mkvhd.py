#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""mkvhd.py - test images that libvhdi 20210425 misreads, and a reader that
does not.

libvhdi's VHD branch of libvhdi_block_descriptor_read_sector_bitmap_data()
computes "byte >> (7 - bit)" without "& 1": a sector whose bitmap bit is 0 but
follows a 1 bit in the same byte is read from the child (stale bytes) instead
of the parent. This script writes VHD differencing children whose bitmaps do
exactly that, with stale data (different from the parent's) in every absent
sector of an allocated block, so a reader with the bug returns wrong bytes.

  mkvhd.py diff PARENT CHILD [--seed N] [--block-size B] [--raw-out FILE]
      write CHILD (VHD differencing, locators W2ru ".\\PARENT" and W2ku)
      over PARENT (VHD fixed, dynamic or differencing, in the same folder);
      print "expected_sha256 <hex>" of the merged disk a guest must see
  mkvhd.py sha256 FILE          sha256 of the merged disk (this reader)
  mkvhd.py map FILE             the disk's allocated ranges, "START END" per
                                line (bytes, merged): sectors some file of
                                the chain holds (VHD BAT and sector bitmaps,
                                VHDX BAT states 6/7; fixed: the whole disk)
                                where that file has data, not a hole
  mkvhd.py libvhdi-sha256 FILE  sha256 as libvhdi reads it (ctypes, chain
                                resolved by locator in the same folder)
  mkvhd.py vhdx-dirty-log FILE  mark a VHDX's log as not replayed (LogGuid
                                set in the current header, CRC-32C fixed)
  mkvhd.py vhdx-log SRC DST [--case C] [--entries N]
                                DST = SRC with a dirty log of several entries
                                (BAT updates, zero descriptor, data sectors;
                                torn, wrapped or unreplayable as C says):
                                libvhdi reads it stale, qemu-img check -r all
                                replays it (see vhdx_log())

  mkvhd.py vhdx-diff PARENT CHILD [--seed N]
      write CHILD (VHDX differencing, .avhdx) over the VHDX PARENT in the
      same folder: parent locator (parent_linkage = the parent's
      DataWriteGuid, relative_path ".\\PARENT", absolute_win32_path,
      volume_path) as Windows writes it (tests/data/dfvfs), sector bitmap
      blocks, payload blocks NOT_PRESENT, FULLY_PRESENT and PARTIALLY_PRESENT
      (absent sectors hold stale bytes); print "expected_sha256 <hex>"
  mkvhd.py chain DIR --format vhd|vhdx [--disks a,b] [--levels 4]
      [--size BYTES] [--seed N] [--time EPOCH]
      in DIR, for every disk, a base (fixed VHD / dynamic VHDX) and
      LEVELS-1 differencing children (NAME-1.avhd(x) ...), mtime of level k
      EPOCH + 3600 k; print one line per file: "<file>\t<sha256>" of the
      disk as that file's chain reads it, base first

Only the standard library is used.
"""
import argparse
import bisect
import ctypes
import ctypes.util
import hashlib
import os
import random
import struct
import sys
import time
import uuid

SECTOR = 512
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
BAT_UNUSED = 0xFFFFFFFF


def vhd_checksum(data):
    return (~sum(data)) & 0xFFFFFFFF


def chs(size):
    """CHS geometry of the VHD specification (appendix)."""
    sectors = min(size // SECTOR, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return struct.pack('>HBB', cth // heads, heads, spt)


class Vhd:
    """A correct reader of VHD fixed/dynamic/differencing files."""

    def __init__(self, path, depth=0):
        if depth > 16:
            raise ValueError('parent chain too deep (loop?)')
        self.path = path
        with open(path, 'rb') as f:
            self.data = f.read()
        self.footer = self.data[-SECTOR:]
        if self.footer[:8] != b'conectix':
            raise ValueError('%s: not a VHD' % path)
        self.size = struct.unpack_from('>Q', self.footer, 48)[0]
        self.type = struct.unpack_from('>I', self.footer, 60)[0]
        self.unique_id = self.footer[68:84]
        self.timestamp = struct.unpack_from('>I', self.footer, 24)[0]
        self.parent = None
        if self.type in (3, 4):
            doff = struct.unpack_from('>Q', self.footer, 16)[0]
            dyn = self.data[doff:doff + 1024]
            assert dyn[:8] == b'cxsparse'
            toff, self.entries, self.bs = struct.unpack_from('>QxxxxII', dyn, 16)
            self.bat = struct.unpack_from('>%dI' % self.entries, self.data, toff)
            self.bitmap_size = -(-(self.bs // SECTOR) // (8 * SECTOR)) * SECTOR
            if self.type == 4:
                name = self.locator(dyn)
                ppath = os.path.join(os.path.dirname(path) or '.', name)
                self.parent = Vhd(ppath, depth + 1)

    def locator(self, dyn):
        for i in range(8):
            code, _space, length, _r, off = struct.unpack_from('>4sIIIQ', dyn, 576 + 24 * i)
            if code == b'W2ru':
                name = self.data[off:off + length].decode('utf-16-le')
                return name.replace('\\', '/').split('/')[-1]
        return dyn[64:576].decode('utf-16-be').rstrip('\0')

    def content(self):
        """The whole disk as a guest sees it."""
        if self.type == 2:
            return bytearray(self.data[:self.size])
        out = self.parent.content() if self.parent else bytearray(self.size)
        for b, entry in enumerate(self.bat):
            start = b * self.bs
            if entry == BAT_UNUSED or start >= self.size:
                continue
            base = entry * SECTOR
            bitmap = self.data[base:base + self.bitmap_size]
            for s in range(min(self.bs, self.size - start) // SECTOR):
                if self.type == 3 or (bitmap[s // 8] >> (7 - s % 8)) & 1:
                    src = base + self.bitmap_size + s * SECTOR
                    out[start + s * SECTOR:start + (s + 1) * SECTOR] = \
                        self.data[src:src + SECTOR]
        return out


def file_data(path):
    """Sorted (start, end) data runs of @path (SEEK_DATA/SEEK_HOLE)."""
    runs = []
    with open(path, 'rb') as f:
        fd, pos = f.fileno(), 0
        end = os.fstat(fd).st_size
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            runs.append((data, hole))
            pos = hole
    return runs


def in_runs(runs, off):
    i = bisect.bisect_right(runs, (off, float('inf'))) - 1
    return i >= 0 and runs[i][0] <= off < runs[i][1]


def sector_map(path):
    """Per sector of the disk: 1 if some file of the chain holds it (and
    that file has data there), else 0. VHD and VHDX (not differencing)."""
    with open(path, 'rb') as f:
        head = f.read(8)
    runs = file_data(path)
    if head == b'vhdxfile':
        with open(path, 'rb') as f:
            d = f.read()
        bat_off, bs, ratio, _lo, _ll, nblocks = vhdx_layout(d)
        out = bytearray(nblocks * bs // SECTOR)  # cut at the virtual size later
        for b in range(nblocks):
            e = struct.unpack_from('<Q', d, bat_off + 8 * (b + b // ratio))[0]
            if e & 7 not in (6, 7):
                continue
            base = (e >> 20) << 20
            for s in range(bs // SECTOR):
                if in_runs(runs, base + s * SECTOR):
                    out[b * bs // SECTOR + s] = 1
        return out
    v = Vhd(path)
    n = v.size // SECTOR
    if v.type == 2:
        return bytearray(1 if in_runs(runs, s * SECTOR) else 0 for s in range(n))
    out = sector_map(v.parent.path) if v.parent else bytearray(n)
    per = v.bs // SECTOR
    for b, entry in enumerate(v.bat):
        if entry == BAT_UNUSED:
            continue
        base = entry * SECTOR
        bitmap = v.data[base:base + v.bitmap_size]
        for s in range(min(per, n - b * per)):
            if v.type == 3 or (bitmap[s // 8] >> (7 - s % 8)) & 1:
                out[b * per + s] = 1 if in_runs(runs, base + v.bitmap_size + s * SECTOR) else 0
    return out


def allocated_ranges(path, vsize):
    """Merged (start, end) byte ranges of sector_map(), cut at @vsize."""
    m, out, s = sector_map(path), [], 0
    n = min(len(m), -(-vsize // SECTOR))
    while s < n:
        if not m[s]:
            s += 1
            continue
        e = s
        while e < n and m[e]:
            e += 1
        out.append((s * SECTOR, min(e * SECTOR, vsize)))
        s = e
    return out


def pick_bitmap(rng, nbytes, first):
    """Bitmap bytes mixing patterns that trip libvhdi (1 then 0 in a byte)."""
    if first:
        pats = [0x80, 0xA5, 0x40, 0xC3, 0x01, 0xFF, 0x00, 0x5A]
        return bytes(pats[i % len(pats)] for i in range(nbytes))
    kind = rng.randrange(5)
    if kind == 0:
        return b'\xff' * nbytes
    if kind == 1:
        return b'\x00' * nbytes
    return bytes(rng.choice([0x80, 0xC0, 0x90, 0x01, 0xFF, 0x00, rng.randrange(256)])
                 for _ in range(nbytes))


def make_diff(parent_path, child_path, seed, bs, raw_out=None):
    parent = Vhd(parent_path)
    size = parent.size
    rng = random.Random(seed)
    pcontent = parent.content()
    nblocks = -(-size // bs)
    bitmap_size = -(-(bs // SECTOR) // (8 * SECTOR)) * SECTOR
    pname = os.path.basename(parent_path)

    footer = bytearray(SECTOR)
    footer[0:8] = b'conectix'
    struct.pack_into('>IIQI4sI4sQQ', footer, 8, 2, 0x00010000, SECTOR,
                     int(time.time()) - VHD_EPOCH, b'rfs ', 0x00010000, b'Wi2k',
                     size, size)
    footer[56:60] = chs(size)
    struct.pack_into('>I', footer, 60, 4)
    footer[68:84] = uuid.UUID(int=rng.getrandbits(128)).bytes
    struct.pack_into('>I', footer, 64, vhd_checksum(footer))

    bat_off = 3 * SECTOR
    bat_bytes = -(-nblocks * 4 // SECTOR) * SECTOR
    rel = ('.\\' + pname).encode('utf-16-le')
    absolute = ('C:\\Replica\\' + pname).encode('utf-16-le')
    loc_off = bat_off + bat_bytes
    loc_space = -(-max(len(rel), len(absolute)) // SECTOR) * SECTOR
    data_off = loc_off + 2 * loc_space

    dyn = bytearray(1024)
    dyn[0:8] = b'cxsparse'
    struct.pack_into('>QQIII', dyn, 8, 0xFFFFFFFFFFFFFFFF, bat_off, 0x00010000, nblocks, bs)
    dyn[40:56] = parent.unique_id
    struct.pack_into('>I', dyn, 56, parent.timestamp)
    uname = pname.encode('utf-16-be')[:512]
    dyn[64:64 + len(uname)] = uname
    struct.pack_into('>4sIIIQ', dyn, 576, b'W2ku', loc_space, len(absolute), 0, loc_off)
    struct.pack_into('>4sIIIQ', dyn, 600, b'W2ru', loc_space, len(rel), 0,
                     loc_off + loc_space)
    struct.pack_into('>I', dyn, 36, vhd_checksum(dyn))

    bat = [BAT_UNUSED] * nblocks
    blocks = bytearray()
    merged = bytearray(pcontent)
    stale_hits = 0
    first = True
    for b in range(nblocks):
        if not first and rng.random() < 0.3:
            continue
        bitmap = bytearray(pick_bitmap(rng, bs // SECTOR // 8, first))
        bitmap += bytes(bitmap_size - len(bitmap))
        data = bytearray(bs)
        for s in range(bs // SECTOR):
            off = b * bs + s * SECTOR
            present = (bitmap[s // 8] >> (7 - s % 8)) & 1
            if present:
                sec = rng.randbytes(SECTOR) if hasattr(rng, 'randbytes') else \
                    bytes(rng.getrandbits(8) for _ in range(SECTOR))
            else:
                # stale: never equal to what the parent holds there
                sec = bytes(((0xEE ^ s ^ b) & 0xFF or 1,)) * SECTOR
                if off < size and pcontent[off:off + SECTOR] == sec:
                    sec = bytes((sec[0] ^ 0xFF,)) * SECTOR
                if off < size and s % 8 and bitmap[s // 8] >> (8 - s % 8):
                    stale_hits += 1
            data[s * SECTOR:(s + 1) * SECTOR] = sec
            if present and off < size:
                merged[off:off + SECTOR] = sec[:min(SECTOR, size - off)]
        bat[b] = (data_off + len(blocks)) // SECTOR
        blocks += bitmap + data
        first = False

    with open(child_path, 'wb') as f:
        f.write(footer)
        f.write(dyn)
        f.write(b''.join(struct.pack('>I', e) for e in bat).ljust(bat_bytes, b'\xff'))
        f.write(absolute.ljust(loc_space, b'\0'))
        f.write(rel.ljust(loc_space, b'\0'))
        f.write(blocks)
        f.write(footer)
    if raw_out:
        with open(raw_out, 'wb') as f:
            f.write(merged)
    assert Vhd(child_path).content() == merged
    return hashlib.sha256(merged).hexdigest(), stale_hits


def libvhdi_sha256(path):
    """Read the chain of @path through libvhdi itself (bug included)."""
    lib = ctypes.CDLL(ctypes.util.find_library('vhdi') or 'libvhdi.so.1')
    vp = ctypes.c_void_p
    files = []
    cur = path
    while True:
        f = vp()
        if lib.libvhdi_file_initialize(ctypes.byref(f), None) != 1 or \
           lib.libvhdi_file_open(f, cur.encode(), 1, None) != 1:
            raise RuntimeError('libvhdi cannot open ' + cur)
        files.append(f)
        dtype = ctypes.c_uint32()
        lib.libvhdi_file_get_disk_type(f, ctypes.byref(dtype), None)
        if dtype.value != 4:
            break
        nsize = ctypes.c_size_t()
        lib.libvhdi_file_get_utf8_parent_filename_size(f, ctypes.byref(nsize), None)
        name = ctypes.create_string_buffer(nsize.value)
        lib.libvhdi_file_get_utf8_parent_filename(f, name, nsize, None)
        base = name.value.decode().replace('\\', '/').split('/')[-1]
        cur = os.path.join(os.path.dirname(path) or '.', base)
    for child, par in zip(files, files[1:]):
        if lib.libvhdi_file_set_parent_file(child, par, None) != 1:
            raise RuntimeError('libvhdi refuses the parent of ' + path)
    size = ctypes.c_uint64()
    lib.libvhdi_file_get_media_size(files[0], ctypes.byref(size), None)
    lib.libvhdi_file_read_buffer_at_offset.restype = ctypes.c_ssize_t
    lib.libvhdi_file_read_buffer_at_offset.argtypes = [vp, ctypes.c_char_p, ctypes.c_size_t,
                                                       ctypes.c_int64, vp]
    h = hashlib.sha256()
    buf = ctypes.create_string_buffer(1 << 20)
    off = 0
    while off < size.value:
        n = min(len(buf), size.value - off)
        got = lib.libvhdi_file_read_buffer_at_offset(files[0], buf, n, off, None)
        if got != n:
            raise RuntimeError('libvhdi read failed at %d' % off)
        h.update(buf.raw[:n])
        off += n
    return h.hexdigest()


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 & -(c & 1))
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def vhdx_current_header(f):
    """(file offset, bytes) of the current VHDX header (valid, highest seq)."""
    best = None
    for off in (65536, 131072):
        f.seek(off)
        h = bytearray(f.read(4096))
        stored = struct.unpack_from('<I', h, 4)[0]
        h[4:8] = b'\0\0\0\0'
        if h[:4] == b'head' and crc32c(h) == stored:
            seq = struct.unpack_from('<Q', h, 8)[0]
            if best is None or seq > best[0]:
                best = (seq, off, h)
    if best is None:
        sys.exit('no valid VHDX header')
    return best[1], best[2]


def vhdx_set_log_guid(f, guid):
    off, h = vhdx_current_header(f)
    h[48:64] = guid
    struct.pack_into('<I', h, 4, crc32c(h))
    f.seek(off)
    f.write(h)


def vhdx_dirty_log(path):
    with open(path, 'r+b') as f:
        vhdx_set_log_guid(f, uuid.uuid4().bytes)


LOG_SECTOR = 4096
GUID_BAT = '2dc27766-f623-4200-9d64-115e9bfd4a08'
GUID_META = '8b7ca206-4790-4b9a-b8fe-575f050f886e'
GUID_PARAMS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b'
GUID_SECTOR = '8141bf1d-a96f-4709-ba47-f233a8faab5f'
GUID_SIZE = '2fa54224-cd1b-4876-b211-5dbed83bf4b8'


def vhdx_layout(d):
    """BAT offset, block size, chunk ratio, log region and blocks of VHDX
    bytes @d."""
    rt = d[196608:262144]
    regs = {str(uuid.UUID(bytes_le=bytes(rt[16 + 32 * i:32 + 32 * i]))):
            struct.unpack_from('<QI', rt, 32 + 32 * i)
            for i in range(struct.unpack_from('<I', rt, 8)[0])}
    meta = regs[GUID_META][0]
    items = {}
    for i in range(struct.unpack_from('<H', d, meta + 10)[0]):
        e = meta + 32 + 32 * i
        items[str(uuid.UUID(bytes_le=bytes(d[e:e + 16])))] = \
            meta + struct.unpack_from('<I', d, e + 16)[0]
    bs = struct.unpack_from('<I', d, items[GUID_PARAMS])[0]
    ss = struct.unpack_from('<I', d, items[GUID_SECTOR])[0]
    h = d[65536:69632] if struct.unpack_from('<Q', d, 65544)[0] >= \
        struct.unpack_from('<Q', d, 131080)[0] else d[131072:135168]
    log_len, log_off = struct.unpack_from('<IQ', h, 68)
    vsize = struct.unpack_from('<Q', d, items[GUID_SIZE])[0]
    return regs[GUID_BAT][0], bs, (1 << 23) * ss // bs, log_off, log_len, -(-vsize // bs)


def log_entry(guid, seq, tail, descs, flushed, last):
    """One log entry: descs are ('data', file offset, 4096 bytes) or
    ('zero', file offset, length)."""
    count = len(descs)
    dbytes = -(-(64 + 32 * count) // LOG_SECTOR) * LOG_SECTOR
    ndata = sum(1 for x in descs if x[0] == 'data')
    length = dbytes + ndata * LOG_SECTOR
    e = bytearray(length)
    struct.pack_into('<4sIIIQII16sQQ', e, 0, b'loge', 0, length, tail, seq, count, 0,
                     guid, flushed, last)
    at = dbytes
    for i, (kind, off, arg) in enumerate(descs):
        if kind == 'zero':
            struct.pack_into('<4sIQQQ', e, 64 + 32 * i, b'zero', 0, arg, off, seq)
            continue
        struct.pack_into('<4sIQQQ', e, 64 + 32 * i, b'desc',
                         struct.unpack_from('<I', arg, 4092)[0],
                         struct.unpack_from('<Q', arg, 0)[0], off, seq)
        e[at:at + LOG_SECTOR] = b'data' + struct.pack('<I', seq >> 32) + arg[8:4092] + \
            struct.pack('<I', seq & 0xFFFFFFFF)
        at += LOG_SECTOR
    struct.pack_into('<I', e, 4, crc32c(e))
    return e


def vhdx_log(src, dst, case, entries=3):
    """Copy VHDX @src (dynamic, no log, two blocks allocated at least) to
    @dst with a dirty log of @case: valid, torn, wrapped, wrongseq (the
    second entry's sequence number skips one: only the first replays),
    badcrc (the first entry's checksum is wrong: nothing valid), pastfile
    (FlushedFileOffset past the end of the file). @entries (1-3) of the
    three entries are written: 1 a BAT update allocating a block through
    the log (its data appended to the file directly, as Hyper-V does);
    2 a zero descriptor and a data sector inside an allocated block; 3 a
    BAT update turning another block ZERO and a data sector over the new
    block. Every case but valid/wrongseq/badcrc/pastfile ends with a torn
    fourth entry (checksum wrong) that must be ignored. The header's
    LogGuid is set; the data of the replayed file is what a reader must
    show (qemu-img check -r all replays it)."""
    d = bytearray(open(src, 'rb').read())
    bat, bs, ratio, log_off, log_len, nblocks = vhdx_layout(d)
    guid = uuid.UUID(int=random.Random(case).getrandbits(128)).bytes
    rng = random.Random(42)

    def entry_index(b):
        return b + b // ratio

    def bat_entry(b):
        return struct.unpack_from('<Q', d, bat + 8 * entry_index(b))[0]

    alloc = [b for b in range(nblocks) if bat_entry(b) & 7 in (6, 7)]
    free = [b for b in range(nblocks) if bat_entry(b) & 7 in (0, 2, 3)]
    if len(alloc) < 2 or not free:
        sys.exit('%s: needs two allocated blocks and a free one' % src)
    a, z, n = alloc[0], alloc[1], free[0]
    a_off = bat_entry(a) >> 20 << 20
    new_off = -(-len(d) // (1 << 20)) * (1 << 20)
    d += bytes(new_off - len(d))
    d += bytes(rng.getrandbits(8) for _ in range(bs))
    size = len(d)
    cur = bytearray(d)  # the file as the log leaves it, entry by entry

    def bat_sector(b, value):
        pos = bat + 8 * entry_index(b)
        struct.pack_into('<Q', cur, pos, value)
        sec = pos // LOG_SECTOR * LOG_SECTOR
        return ('data', sec, bytes(cur[sec:sec + LOG_SECTOR]))

    def data_sector(off, byte):
        cur[off:off + LOG_SECTOR] = bytes([byte]) * LOG_SECTOR
        return ('data', off, bytes(cur[off:off + LOG_SECTOR]))

    def zero(off, length):
        cur[off:off + length] = bytes(length)
        return ('zero', off, length)

    plan = [[bat_sector(n, new_off | 6)],
            [zero(a_off + 4096, 8192), data_sector(a_off + 65536, 0xC3)],
            [bat_sector(z, 2), data_sector(new_off, 0x3C)]][:entries]
    flushed = size + (1 << 20) if case == 'pastfile' else size
    first = 250 if case == 'wrapped' else 2
    if case == 'wrapped':  # the last entry wraps round the end of the log
        plan[-1].append(data_sector(new_off + 8192, 0x5A))
    seqs = [7 + i for i in range(len(plan))]
    if case == 'wrongseq':
        seqs = [7] + [9 + i for i in range(len(plan) - 1)]
    log = bytearray(log_len)
    pos = first * LOG_SECTOR
    for i, descs in enumerate(plan):
        e = log_entry(guid, seqs[i], first * LOG_SECTOR, descs, flushed, size)
        if case == 'badcrc' and i == 0:
            e[4] ^= 0xFF
        for k in range(len(e)):
            log[(pos + k) % log_len] = e[k]
        pos = (pos + len(e)) % log_len
    if case in ('torn', 'wrapped'):
        e = log_entry(guid, seqs[-1] + 1, first * LOG_SECTOR,
                      [('data', a_off, bytes([0xEE]) * LOG_SECTOR)], flushed, size)
        e[-2048:] = bytes(2048)  # only half of its data sector reached the disk
        for k in range(len(e)):
            log[(pos + k) % log_len] = e[k]
    d[log_off:log_off + log_len] = log
    with open(dst, 'wb') as f:
        f.write(d)
    with open(dst, 'r+b') as f:
        vhdx_set_log_guid(f, guid)


# ---- VHDX writer (MS-VHDX; layout as Windows 10 writes it, see
# tests/data/dfvfs/ntfs-differential.vhdx) ------------------------------------

MiB = 1 << 20
GUID_PAGE83 = 'beca12ab-b2e6-4523-93ef-c309e000c746'
GUID_PHYS = 'cda348c7-445d-4471-9cc9-e9885251c556'
GUID_LOCATOR = 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c'
GUID_LOCTYPE = 'b04aefb7-d19e-4a81-b789-25b8e9445913'


def vhdx_guid_le(text):
    return uuid.UUID(text).bytes_le


class Vhdx:
    """A reader of what vhdx_write() writes (and of Windows' files with
    blocks NOT_PRESENT/FULLY_PRESENT/PARTIALLY_PRESENT), chain by locator."""

    def __init__(self, path, depth=0):
        if depth > 16:
            raise ValueError('parent chain too deep (loop?)')
        d = open(path, 'rb').read()
        bat, bs, ratio, _lo, _ll, nblocks = vhdx_layout(d)
        rt = d[196608:262144]
        regs = {str(uuid.UUID(bytes_le=bytes(rt[16 + 32 * i:32 + 32 * i]))):
                struct.unpack_from('<QI', rt, 32 + 32 * i)
                for i in range(struct.unpack_from('<I', rt, 8)[0])}
        meta = regs[GUID_META][0]
        items = {}
        for i in range(struct.unpack_from('<H', d, meta + 10)[0]):
            e = meta + 32 + 32 * i
            off, length = struct.unpack_from('<II', d, e + 16)
            items[str(uuid.UUID(bytes_le=bytes(d[e:e + 16])))] = d[meta + off:meta + off + length]
        self.size = struct.unpack_from('<Q', items[GUID_SIZE])[0]
        self.lss = struct.unpack_from('<I', items[GUID_SECTOR])[0]
        has_parent = struct.unpack_from('<I', items[GUID_PARAMS], 4)[0] & 2
        _off, h = vhdx_current_header(open(path, 'rb'))
        self.data_write_guid = bytes(h[32:48])
        self.d, self.bat, self.bs, self.ratio, self.nblocks = d, bat, bs, ratio, nblocks
        self.parent = None
        if has_parent:
            kv = locator_values(items[GUID_LOCATOR])
            name = kv['relative_path'].replace('\\', '/').split('/')[-1]
            self.parent = Vhdx(os.path.join(os.path.dirname(path) or '.', name), depth + 1)
            want = uuid.UUID(kv['parent_linkage'].strip('{}')).bytes_le
            if want != self.parent.data_write_guid:
                raise ValueError('%s: parent_linkage does not match %s' % (path, name))

    def entry(self, i):
        return struct.unpack_from('<Q', self.d, self.bat + 8 * i)[0]

    def content(self):
        out = self.parent.content() if self.parent else bytearray(self.size)
        spb = self.bs // self.lss
        for b in range(self.nblocks):
            e = self.entry(b + b // self.ratio)
            state, off = e & 7, (e >> 20) << 20
            start = b * self.bs
            n = min(self.bs, self.size - start)
            if state == 6:
                out[start:start + n] = self.d[off:off + n]
            elif state in (2, 3) or (state == 0 and not self.parent):
                out[start:start + n] = bytes(n)
            elif state == 7:
                c = b // self.ratio
                sb = (self.entry(c * (self.ratio + 1) + self.ratio) >> 20) << 20
                first = (b % self.ratio) * spb
                for s in range(n // self.lss):
                    bit = first + s
                    if (self.d[sb + bit // 8] >> (bit % 8)) & 1:
                        o = s * self.lss
                        out[start + o:start + o + self.lss] = self.d[off + o:off + o + self.lss]
        return out


def locator_values(loc):
    kv = {}
    for k in range(struct.unpack_from('<H', loc, 18)[0]):
        ko, vo, kl, vl = struct.unpack_from('<IIHH', loc, 20 + 12 * k)
        kv[loc[ko:ko + kl].decode('utf-16-le')] = loc[vo:vo + vl].decode('utf-16-le')
    return kv


def locator_bytes(pairs):
    """The parent locator item: header, entries, then UTF-16LE strings."""
    head = bytearray(vhdx_guid_le(GUID_LOCTYPE) + struct.pack('<HH', 0, len(pairs)))
    strings = bytearray()
    base = 20 + 12 * len(pairs)
    for key, value in pairs:
        k, v = key.encode('utf-16-le'), value.encode('utf-16-le')
        head += struct.pack('<IIHH', base + len(strings), base + len(strings) + len(k),
                            len(k), len(v))
        strings += k + v
    return bytes(head + strings)


def vhdx_write(path, size, bs, blocks, parent=None, rng=None, lss=SECTOR):
    """Write a VHDX of virtual @size, block size @bs. @blocks: {block: (state,
    data bytes, bitmap bytes or None)}; state 6 FULLY_PRESENT, 7
    PARTIALLY_PRESENT (bitmap: one bit per sector, LSB first), 2 ZERO.
    @parent: (file name, its DataWriteGuid) for a differencing file."""
    rng = rng or random.Random(0)

    def guid():
        return uuid.UUID(int=rng.getrandbits(128), version=4).bytes_le
    ratio = (1 << 23) * lss // bs
    nblocks = -(-size // bs)
    nchunks = -(-nblocks // ratio)
    nentries = nchunks * (ratio + 1) if parent else nblocks + (nblocks - 1) // ratio
    f = bytearray(4 * MiB)
    f[0:8] = b'vhdxfile'
    creator = 'replicafs tests/mkvhd.py'.encode('utf-16-le')
    f[8:8 + len(creator)] = creator
    file_write, data_write = guid(), guid()
    for i, off in enumerate((64 * 1024, 128 * 1024)):
        h = bytearray(4096)
        struct.pack_into('<4sIQ16s16s16sHHIQ', h, 0, b'head', 0, 1 + i, file_write, data_write,
                         bytes(16), 0, 1, MiB, MiB)
        struct.pack_into('<I', h, 4, crc32c(h))
        f[off:off + 4096] = h
    bat_len = -(-nentries * 8 // MiB) * MiB
    rt = bytearray(64 * 1024)
    struct.pack_into('<4sIII', rt, 0, b'regi', 0, 2, 0)
    rt[16:32] = vhdx_guid_le(GUID_BAT)
    struct.pack_into('<QII', rt, 32, 3 * MiB, bat_len, 1)
    rt[48:64] = vhdx_guid_le(GUID_META)
    struct.pack_into('<QII', rt, 64, 2 * MiB, MiB, 1)
    struct.pack_into('<I', rt, 4, crc32c(rt))
    f[192 * 1024:256 * 1024] = rt
    f[256 * 1024:320 * 1024] = rt
    items = [(GUID_PARAMS, struct.pack('<II', bs, 2 if parent else 0), 4),
             (GUID_SIZE, struct.pack('<Q', size), 6),
             (GUID_SECTOR, struct.pack('<I', lss), 6),
             (GUID_PHYS, struct.pack('<I', 4096), 6),
             (GUID_PAGE83, guid(), 6)]
    if parent:
        pname, pguid = parent
        items.append((GUID_LOCATOR, locator_bytes([
            ('parent_linkage', '{%s}' % uuid.UUID(bytes_le=pguid)),
            ('relative_path', '.\\' + pname),
            ('volume_path', '\\\\?\\Volume{00000000-0000-0000-0000-000000000000}\\Replica\\' + pname),
            ('absolute_win32_path', 'C:\\Replica\\' + pname)]), 4))
    meta = 2 * MiB
    f[meta:meta + 8] = b'metadata'
    struct.pack_into('<HH', f, meta + 8, 0, len(items))
    at = 64 * 1024
    for i, (g, value, flags) in enumerate(items):
        e = meta + 32 + 32 * i
        f[e:e + 16] = vhdx_guid_le(g)
        struct.pack_into('<IIII', f, e + 16, at, len(value), flags, 0)
        f[meta + at:meta + at + len(value)] = value
        at += -(-len(value) // 8) * 8
    bat = [0] * nentries
    end = -(-(3 * MiB + bat_len) // MiB) * MiB
    f += bytes(end - len(f))
    sbs = {}
    for b in sorted(blocks):
        state, data, bitmap = blocks[b]
        if state in (6, 7):
            bat[b + b // ratio] = state | (len(f) // MiB) << 20
            f += data.ljust(-(-bs // MiB) * MiB, b'\0')
        else:
            bat[b + b // ratio] = state
        if state == 7:
            c = b // ratio
            if c not in sbs:
                sbs[c] = len(f)
                bat[c * (ratio + 1) + ratio] = 6 | (len(f) // MiB) << 20
                f += bytes(MiB)
            first = (b % ratio) * (bs // lss) // 8
            f[sbs[c] + first:sbs[c] + first + len(bitmap)] = bitmap
    struct.pack_into('<%dQ' % nentries, f, 3 * MiB, *bat)
    with open(path, 'wb') as out:
        out.write(f)
    return data_write


def make_vhdx_base(path, size, bs, seed):
    """A dynamic VHDX, about 70% of its blocks FULLY_PRESENT random data,
    one ZERO; returns its content."""
    rng = random.Random(seed)
    content = bytearray(size)
    blocks = {}
    for b in range(-(-size // bs)):
        n = min(bs, size - b * bs)
        if b == 1:
            blocks[b] = (2, None, None)
        elif b == 0 or rng.random() < 0.7:
            data = rng.randbytes(n)
            blocks[b] = (6, data, None)
            content[b * bs:b * bs + n] = data
    vhdx_write(path, size, bs, blocks, rng=rng)
    return content


def make_vhdx_diff(parent_path, child_path, seed):
    """A VHDX differencing child over @parent_path; returns its content."""
    par = Vhdx(parent_path)
    rng = random.Random(seed)
    content = par.content()
    size, bs, lss = par.size, par.bs, par.lss
    spb = bs // lss
    blocks = {}
    for b in range(-(-size // bs)):
        n = min(bs, size - b * bs)
        kind = 'partial' if b == 0 else rng.choice(['none', 'full', 'partial', 'partial'])
        if kind == 'none':
            continue
        data = bytearray(rng.randbytes(n))
        if kind == 'full':
            blocks[b] = (6, bytes(data), None)
            content[b * bs:b * bs + n] = data
            continue
        bits = bytearray(pick_bitmap(rng, spb // 8, b == 0))
        for s in range(n // lss):
            o = s * lss
            if (bits[s // 8] >> (s % 8)) & 1:
                content[b * bs + o:b * bs + o + lss] = data[o:o + lss]
            else:  # stale: never what the parent holds there
                data[o:o + lss] = bytes(((0xEE ^ s ^ b) & 0xFF or 1,)) * lss
                if content[b * bs + o:b * bs + o + lss] == data[o:o + lss]:
                    data[o:o + lss] = bytes((data[o] ^ 0xFF,)) * lss
        blocks[b] = (7, bytes(data), bytes(bits))
    vhdx_write(child_path, size, bs, blocks, rng=rng,
               parent=(os.path.basename(parent_path), par.data_write_guid))
    got = Vhdx(child_path).content()
    assert got == content, 'vhdx writer and reader disagree'
    return content


def make_vhd_fixed(path, content, seed):
    rng = random.Random(seed)
    size = len(content)
    footer = bytearray(SECTOR)
    footer[0:8] = b'conectix'
    struct.pack_into('>IIQI4sI4sQQ', footer, 8, 2, 0x00010000, 0xFFFFFFFFFFFFFFFF,
                     int(time.time()) - VHD_EPOCH, b'win ', 0x00010000, b'Wi2k', size, size)
    footer[56:60] = chs(size)  # 'win ': qemu takes the size, not the geometry
    struct.pack_into('>I', footer, 60, 2)
    footer[68:84] = uuid.UUID(int=rng.getrandbits(128)).bytes
    struct.pack_into('>I', footer, 64, vhd_checksum(footer))
    with open(path, 'wb') as f:
        f.write(content)
        f.write(footer)


def make_chain(folder, fmt, disks, levels, size, seed, epoch):
    """Every disk of @disks as a chain of @levels files; returns [(file,
    sha256)] base first, disk by disk."""
    out = []
    for i, disk in enumerate(disks):
        rng = random.Random(seed * 1000 + i)
        ext = '.vhdx' if fmt == 'vhdx' else '.vhd'
        names = [disk + ext] + ['%s-%d.a%s' % (disk, k, ext[1:]) for k in range(1, levels)]
        path = os.path.join(folder, names[0])
        if fmt == 'vhdx':
            content = make_vhdx_base(path, size, MiB, rng.getrandbits(32))
        else:
            content = bytearray(rng.randbytes(size))
            content[MiB:2 * MiB] = bytes(MiB)
            make_vhd_fixed(path, content, rng.getrandbits(32))
        out.append((names[0], hashlib.sha256(content).hexdigest()))
        for k in range(1, levels):
            child = os.path.join(folder, names[k])
            parent = os.path.join(folder, names[k - 1])
            if fmt == 'vhdx':
                digest = hashlib.sha256(make_vhdx_diff(parent, child, rng.getrandbits(32))).hexdigest()
            else:
                digest, _hits = make_diff(parent, child, rng.getrandbits(32), MiB)
            out.append((names[k], digest))
        for k, name in enumerate(names):
            os.utime(os.path.join(folder, name), (epoch + 3600 * k, epoch + 3600 * k))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    d = sub.add_parser('diff')
    d.add_argument('parent')
    d.add_argument('child')
    d.add_argument('--seed', type=int, default=1)
    d.add_argument('--block-size', type=int, default=2 << 20)
    d.add_argument('--raw-out')
    xd = sub.add_parser('vhdx-diff')
    xd.add_argument('parent')
    xd.add_argument('child')
    xd.add_argument('--seed', type=int, default=1)
    ch = sub.add_parser('chain')
    ch.add_argument('dir')
    ch.add_argument('--format', choices=['vhd', 'vhdx'], required=True)
    ch.add_argument('--disks', default='sys,data')
    ch.add_argument('--levels', type=int, default=4)
    ch.add_argument('--size', type=int, default=8 << 20)
    ch.add_argument('--seed', type=int, default=1)
    ch.add_argument('--time', type=int, default=1767225600)  # 2026-01-01T00:00:00Z
    for name in ('sha256', 'libvhdi-sha256', 'vhdx-dirty-log', 'vhdx-sha256'):
        sub.add_parser(name).add_argument('file')
    mp = sub.add_parser('map')
    mp.add_argument('file')
    mp.add_argument('size', type=int, help='virtual size in bytes')
    lg = sub.add_parser('vhdx-log')
    lg.add_argument('src')
    lg.add_argument('dst')
    lg.add_argument('--case', default='valid',
                    choices=['valid', 'torn', 'wrapped', 'wrongseq', 'badcrc', 'pastfile'])
    lg.add_argument('--entries', type=int, default=3, choices=[1, 2, 3])
    a = ap.parse_args()
    if a.cmd == 'diff':
        if a.block_size % (8 * SECTOR) or a.block_size <= 0:
            sys.exit('block size must be a multiple of 4096')
        digest, hits = make_diff(a.parent, a.child, a.seed, a.block_size, a.raw_out)
        print('expected_sha256', digest)
        print('stale_sectors_libvhdi_misreads', hits)
    elif a.cmd == 'vhdx-diff':
        print('expected_sha256', hashlib.sha256(make_vhdx_diff(a.parent, a.child, a.seed)).hexdigest())
    elif a.cmd == 'chain':
        if a.size % MiB or a.size <= 0 or a.levels < 1:
            sys.exit('size must be a multiple of 1 MiB, levels at least 1')
        for name, digest in make_chain(a.dir, a.format, a.disks.split(','), a.levels, a.size,
                                       a.seed, a.time):
            print('%s\t%s' % (name, digest))
    elif a.cmd == 'vhdx-sha256':
        print(hashlib.sha256(Vhdx(a.file).content()).hexdigest())
    elif a.cmd == 'sha256':
        print(hashlib.sha256(Vhd(a.file).content()).hexdigest())
    elif a.cmd == 'map':
        for start, end in allocated_ranges(a.file, a.size):
            print(start, end)
    elif a.cmd == 'libvhdi-sha256':
        print(libvhdi_sha256(a.file))
    elif a.cmd == 'vhdx-log':
        vhdx_log(a.src, a.dst, a.case, a.entries)
    else:
        vhdx_dirty_log(a.file)


if __name__ == '__main__':
    main()
