#!/usr/bin/env python3
"""Header bytes of a fragmented MP4 against its media bytes, per hour.

    fragment-overhead.py CLIP.mp4

Walks the top-level boxes: every `moof` (whole box; in a clip finished progressive, the
`free` boxes the moofs became, which still take their room), the 8 or 16 bytes of each `mdat`
header, the `mfra` (clips finished fragmented), the progressive `moov` with the sample tables
at the end (clips finished progressive) and the rest (ftyp, the header moov, anything else).
Media = the mdat payloads.
Then, from the same `moof`s, what one fragment per GOP would have cost (the layout before
parts): the fragments from one that starts with a video sync sample up to the next are
merged, keeping one moof + mfhd header, one traf + tfhd + tfdt + trun header per track, all
the per-sample trun entries (they do not depend on how samples are grouped: a later part's
first sample is a non-sync one, which the defaults cover) and one mdat header. The mfra
lists only fragments starting with a sync sample, one per GOP either way, so it is the same.
"""

import struct
import subprocess
import sys


def boxes(buf, start, end):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        yield kind.decode("latin-1"), pos, size, header
        pos += size


def trun_layout(buf, pos):
    """(fixed bytes, per-sample bytes, sample count, first sample is sync or None)."""
    flags = struct.unpack_from(">I", buf, pos + 8)[0] & 0xFFFFFF
    count = struct.unpack_from(">I", buf, pos + 12)[0]
    fixed = 16 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    per = sum(4 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
    first_flags = None
    if flags & 0x4:
        first_flags = struct.unpack_from(">I", buf, pos + 16 + (4 if flags & 0x1 else 0))[0]
    elif flags & 0x400 and count:
        off = pos + fixed + (4 if flags & 0x100 else 0) + (4 if flags & 0x200 else 0)
        first_flags = struct.unpack_from(">I", buf, off)[0]
    sync = None if first_flags is None else not (first_flags >> 16) & 1
    return fixed, per * count, count, sync


def main(path):
    buf = open(path, "rb").read()
    totals = {"moof": 0, "mdat_hdr": 0, "mdat": 0, "mfra": 0, "tables": 0, "other": 0}
    frags = []  # per moof: {track: (traf_fixed, per_sample, samples, sync)}
    video_track = None
    seen_mdat = False
    for kind, pos, size, header in boxes(buf, 0, len(buf)):
        # Finishing hides the fragmented header and the moofs as free boxes of the same size.
        if kind == "free" and buf[pos + 12 : pos + 16] == b"mfhd":
            kind = "moof"
        elif kind == "free" and buf[pos + 12 : pos + 16] == b"mvhd":
            kind = "moov"
        if kind == "moov" and seen_mdat:
            totals["tables"] += size
            continue
        if kind == "moof":
            totals["moof"] += size
            frag = {}
            for k, p, s, h in boxes(buf, pos + 8, pos + size):
                if k != "traf":
                    continue
                track, fixed, per, count, sync = None, 8, 0, 0, None
                for k2, p2, s2, _ in boxes(buf, p + 8, p + s):
                    if k2 == "tfhd":
                        track = struct.unpack_from(">I", buf, p2 + 12)[0]
                        fixed += s2
                    elif k2 == "trun":
                        f, pe, c, sy = trun_layout(buf, p2)
                        fixed, per, count = fixed + f, per + pe, count + c
                        sync = sy if sync is None else sync
                    else:
                        fixed += s2
                frag[track] = (fixed, per, count, sync)
            frags.append(frag)
        elif kind == "mdat":
            seen_mdat = True
            totals["mdat_hdr"] += header
            totals["mdat"] += size - header
        elif kind == "mfra":
            totals["mfra"] += size
        else:
            totals["other"] += size
            if kind == "moov":
                for k, p, s, h in boxes(buf, pos + 8, pos + size):
                    if k == "trak":
                        for k2, p2, s2, _ in boxes(buf, p + 8, p + s):
                            if k2 == "mdia":
                                for k3, p3, s3, _ in boxes(buf, p2 + 8, p2 + s2):
                                    if k3 == "hdlr" and buf[p3 + 16 : p3 + 20] == b"vide":
                                        for k4, p4, s4, _ in boxes(buf, p + 8, p + s):
                                            if k4 == "tkhd":
                                                v = buf[p4 + 8]
                                                video_track = struct.unpack_from(">I", buf, p4 + (28 if v else 20))[0]

    # One fragment per GOP, from the same moofs.
    gops = []
    for frag in frags:
        v = frag.get(video_track)
        if not gops or (v is not None and v[3]):
            gops.append({})
        g = gops[-1]
        for track, (fixed, per, count, sync) in frag.items():
            if track in g:
                g[track] = (g[track][0], g[track][1] + per)
            else:
                g[track] = (fixed, per)
    gop_moof = sum(8 + 16 + sum(f + p for f, p in g.values()) for g in gops)

    seconds = float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
        check=True, capture_output=True, text=True).stdout)
    media = totals["mdat"]
    hdr = totals["moof"] + totals["mdat_hdr"] + totals["mfra"] + totals["tables"]
    gop_hdr = gop_moof + 8 * len(gops) + totals["mfra"] + totals["tables"]
    per_hour = 3600 / seconds
    print(f"clip: {path}, {seconds:.3f} s, {len(buf)} bytes, video track {video_track}")
    print(f"  media (mdat payloads)    {media:>12,} bytes  ({8 * media / seconds / 1e6:.3f} Mb/s)")
    print(f"  fragments                {len(frags):>12,}  ({len(frags) / seconds:.2f}/s), GOPs {len(gops)}")
    print(f"  moof                     {totals['moof']:>12,} bytes  ({totals['moof'] / len(frags):.0f} per fragment)")
    print(f"  mdat headers             {totals['mdat_hdr']:>12,} bytes")
    print(f"  mfra                     {totals['mfra']:>12,} bytes")
    print(f"  progressive moov (tables){totals['tables']:>12,} bytes")
    print(f"  ftyp + moov + other      {totals['other']:>12,} bytes (once per clip, not counted)")
    print(f"  parts as recorded:  {hdr:>10,} bytes = {100 * hdr / media:.3f} % of the media,"
          f" {hdr * per_hour / 1e6:.2f} MB per hour")
    print(f"  one fragment / GOP: {gop_hdr:>10,} bytes = {100 * gop_hdr / media:.3f} % of the media,"
          f" {gop_hdr * per_hour / 1e6:.2f} MB per hour (computed from the same moofs)")
    print(f"  parts cost {(hdr - gop_hdr) * per_hour / 1e6:.2f} MB per hour more"
          f" ({100 * (hdr - gop_hdr) / media:.3f} % of the media)")


if __name__ == "__main__":
    main(sys.argv[1])
