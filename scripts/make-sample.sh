#!/usr/bin/env bash
# Regenerates assets/sample: 6 s of 640x360 H.264 + AAC as ffmpeg's HLS fMP4 muxer writes it
# (init.mp4, seg*.m4s, index.m3u8). The output is committed so the README's first command
# needs no ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
out=assets/sample
rm -rf "$out" && mkdir -p "$out"
ffmpeg -nostdin -hide_banner -v error \
  -f lavfi -i "testsrc2=size=640x360:rate=25" \
  -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000" -t 6 \
  -c:v libx264 -preset veryfast -crf 30 -pix_fmt yuv420p -g 25 \
  -c:a aac -b:a 48k \
  -f hls -hls_segment_type fmp4 -hls_time 2 -hls_playlist_type vod \
  -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$out/seg%d.m4s" \
  "$out/index.m3u8"
ls -l "$out"
