#!/usr/bin/env bash
# Prints the CNNSLICER_TARGET_CPU values (Package.swift) whose code this
# machine can execute, one per line: `make test-targets` builds and tests each.
# A target is listed when /proc/cpuinfo has every vector and bit-manipulation
# feature the compiler may use for it. (movdiri/movdir64b, which znver5 also
# implies, are not required: the compiler only emits them through intrinsics,
# and virtual machines often hide them.)
set -euo pipefail
echo baseline
[ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ] || exit 0
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
haswell=(avx avx2 fma bmi1 bmi2 movbe f16c abm popcnt)
znver4=("${haswell[@]}" avx512f avx512dq avx512cd avx512bw avx512vl avx512ifma avx512vbmi avx512_vbmi2
        avx512_vnni avx512_bitalg avx512_vpopcntdq avx512_bf16 gfni vaes vpclmulqdq)
znver5=("${znver4[@]}" avx512_vp2intersect avx_vnni)
has "${haswell[@]}" && echo haswell
has "${znver4[@]}" && echo znver4
has "${znver5[@]}" && echo znver5
exit 0
