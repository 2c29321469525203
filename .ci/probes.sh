#!/usr/bin/env bash
# Checks the release test binaries (built by `cargo test --release`) for the x86-64 stack probe
# hazard that `backend::frame_first` guards against: LLVM probes a frame larger than 32 KB with
# a loop counting in r11 (`mov %rsp,%r11; sub $N,%r11; ...`) without checking whether r11 holds
# a live value, which it may when shrink-wrapping has put the frame's set-up after other code.
# Every function of this crate with such a loop must begin with it: nothing before it but the
# frame's own set-up (pushes, the frame pointer, the alignment, the first probes). x86-64 only.
set -euo pipefail
# (Binaries may be named as arguments instead.)
args=()
for a in "$@"; do args+=("$(realpath "$a")"); done
cd "$(dirname "$0")/.."
if [[ "$(uname -m)" != x86_64 ]]; then
    echo "probes: not an x86-64 host, nothing to check"
    exit 0
fi
if [[ ${#args[@]} -gt 0 ]]; then
    exes=("${args[@]}")
else
    mapfile -t exes < <(cargo test --release --no-run --message-format=json 2>/dev/null |
        grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
fi
[[ ${#exes[@]} -gt 0 ]] || { echo "probes: no test binaries found"; exit 1; }
bad=0
for exe in "${exes[@]}"; do
    out=$(objdump -d --no-show-raw-insn -C "$exe" | awk -v exe="$(basename "$exe")" '
        /^[0-9a-f]+ <.*>:$/ { fn = $0; n = 0; ours = index(fn, "focal_loss") > 0; next }
        !ours { next }
        {
            k = split($0, f, "\t"); ins = f[k]; gsub(/ +/, " ", ins)
            if (ins == "") next
            if (pend) {
                pend = 0
                if (ins ~ /^sub \$0x[0-9a-f]+,%r11$/) {
                    loops++
                    if (early != "") { print exe ": " fn " probes after: " early; bad++ }
                }
            }
            if (ins == "mov %rsp,%r11") { pend = 1; next }
            if (n == 0) early = ""
            n++
            # (the frame set-up: pushes, frame pointer, alignment, stack adjustments, probes)
            setup = ins ~ /^(endbr64|push |nop)/ || ins == "mov %rsp,%rbp" ||
                ins ~ /^(and|sub) \$0x[0-9a-f]+,%rsp$/ || ins == "movq $0x0,(%rsp)"
            if (!setup && early == "") early = ins
        }
        END { print "probe loops " loops + 0 " bad " bad + 0 }')
    echo "$out" | grep -v '^probe loops' || true
    summary=$(echo "$out" | tail -1)
    echo "probes: $(basename "$exe"): ${summary}"
    [[ "$summary" == *" bad 0" ]] || bad=1
done
if [[ $bad -ne 0 ]]; then
    echo "probes: a function of this crate runs code before its stack probe loop (see above)"
    exit 1
fi
echo "probes: every probe loop of the crate's functions comes first"
