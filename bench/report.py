#!/usr/bin/env python3
"""Turns bench/run's measurements into the Markdown report (stdout). Not run by hand.

    report.py RESULTS.tsv DEMO_KEYS BARE_KEYS
Environment (from bench/run): GIT_REV MODE RUNS PROFILE LOAD_BEFORE LOAD_AFTER LAYOUT SMALL_LAYOUT FIX CI_MODE
"""

import datetime
import json
import os
import platform
import subprocess
import sys

MIB = 1024


def sh(*cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def first_line(s):
    return s.splitlines()[0] if s else ""


def machine():
    cpu = "unknown"
    flags = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and cpu == "unknown":
            cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    mem_kb = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    sha = "SHA extensions (sha_ni)" if " sha_ni" in flags else "no SHA extensions"
    return (f"{os.cpu_count()} cores, {cpu} ({sha}), {mem_kb / 1024 / 1024:.1f} GiB RAM, "
            f"Linux {platform.release()}")


def fixture_line(path):
    fj = os.path.join(os.path.dirname(path), "fixture.json")
    try:
        f = json.load(open(fj))
    except OSError:
        return "?"
    parts = []
    for arch, p in sorted(f["platforms"].items()):
        parts.append(f"{arch}: {len(p['layers'])} gzip layers, {p['files']:,} files, {p['elf']} ELF, "
                     f"{p['compressed'] / 1e6:.0f} MB")
    return (f"{f['compressed'] / 1e6:.0f} MB compressed, {f['uncompressed'] / 1e6:.0f} MB of tar "
            f"({'; '.join(parts)})")


def main():
    results_tsv, demo_keys_file, bare_keys_file = sys.argv[1:]
    rows = {}
    order = []
    for line in open(results_tsv):
        key, wall, rss, rc, note, cmd, cpu = line.rstrip("\n").split("\t")
        rows[key] = {"wall": float(wall) if wall else None, "rss": int(rss) if rss else None,
                     "rc": rc, "note": note, "cmd": cmd, "cpu": float(cpu) if cpu else None}
        order.append(key)
    demo_keys = [k for k in open(demo_keys_file).read().split() if k in rows]
    bare_keys = [k for k in open(bare_keys_file).read().split() if k in rows]
    mode = os.environ["MODE"]
    runs = os.environ["RUNS"]
    ci = os.environ.get("CI_MODE") == "1"

    def wall(k):
        r = rows.get(k)
        return r["wall"] if r and r["wall"] is not None and not r["note"] else None

    def rss_mib(k):
        r = rows.get(k)
        return r["rss"] / MIB if r and r["rss"] else None

    def cpu(k):
        r = rows.get(k)
        return r["cpu"] if r and r["cpu"] is not None and not r["note"] else None

    def fmt_s(v):
        return f"{v:.2f}" if v is not None else "–"

    def fmt_ratio(a, b):
        return f"{a / b:.2f}×" if a is not None and b else "–"

    def fmt_mib(v):
        return f"{v:.0f}" if v is not None else "–"

    out = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rev = os.environ.get("GIT_REV", "unknown")
    out.append(f"### {mode} fixture{' (CI smoke, one run each)' if ci else ''}, {now}")
    out.append("")
    out.append(f"- Machine: {machine()}; load average (1, 5, 15 min) {os.environ.get('LOAD_START', '?')} when "
               f"bench/run started, {os.environ['LOAD_BEFORE']} before the timed rounds, "
               f"{os.environ['LOAD_AFTER']} after them.")
    if os.environ.get("NOTE_TEXT"):
        out.append(f"- Note: {os.environ['NOTE_TEXT']}")
    if os.environ.get("ELAPSED"):
        e = int(os.environ["ELAPSED"])
        out.append(f"- This `bench/run` took {e // 60} min {e % 60} s in all (build, fixtures, registries, "
                   f"{runs} round{'s' if runs != '1' else ''}).")
    out.append(f"- mab-verify: {rev}; build: {os.environ['PROFILE']}. Peers: "
               f"{first_line(sh('openssl', 'version'))}; {first_line(sh('pigz', '--version'))}; "
               f"{first_line(sh('skopeo', '--version'))}; {first_line(sh('umoci', '--version'))}; "
               f"{first_line(sh('file', '--version'))}.")
    out.append(f"- Fixture `{os.path.relpath(os.environ['LAYOUT'])}`: {fixture_line(os.environ['LAYOUT'])}.")
    nice = os.environ.get("NICE", "0")
    out.append(f"- Warm page cache; best wall time of {runs} interleaved run{'s' if runs != '1' else ''}, "
               f"least CPU time (user + system, children included), largest peak RSS (`/usr/bin/time -v`; "
               f"for a pipeline, its largest process)" + (f"; run at nice {nice}" if nice not in ("0", "") else "") + ".")
    out.append("")
    floor = wall("floor")
    out.append("| tool | what it does | best wall (s) | × floor | CPU (s) | peak RSS (MiB) | exit codes |")
    out.append("|---|---|---:|---:|---:|---:|---|")
    names = {
        "verify": "**mab-verify** full verify",
        "floor": "one-pass floor",
        "floor_par": "floor, layers in parallel",
        "skopeo": "skopeo copy --all",
        "umoci": "umoci unpack",
        "file": "file(1) over a rootfs",
    }
    for key in ["verify", "floor", "floor_par", "skopeo", "umoci", "file"]:
        if key not in rows:
            continue
        r = rows[key]
        cmd = r["cmd"].replace("|", "\\|")
        if r["note"]:
            cmd += f" — *{r['note']}*".replace("|", "\\|")
        out.append(f"| {names[key]} | {cmd} | {fmt_s(wall(key))} | {fmt_ratio(wall(key), floor)} | "
                   f"{fmt_s(r['cpu'])} | {fmt_mib(rss_mib(key))} | {r['rc'] or '–'} |")
    out.append("")
    out.append("The floor is a single stream: layers one after another, one inflate thread "
               "(`pigz -dc` does not parallelise inflation), the two hashes beside it. "
               "umoci and file(1) cover one platform (amd64) only; the others cover both.")
    out.append("")

    targets = []
    if wall("verify") and floor:
        ratio = wall("verify") / floor
        targets.append(("full verify ≤ 1.2× the floor (aim ≤ 0.6×)", f"{ratio:.2f}×", ratio <= 1.2))
    if rss_mib("verify"):
        targets.append(("peak RSS ≤ 128 MiB", f"{rss_mib('verify'):.0f} MiB", rss_mib("verify") <= 128))
    if "verify_small" in rows:
        out.append("**Memory, small vs large fixture**")
        out.append("")
        out.append("| fixture | mab-verify wall (s) | floor (s) | × floor | mab-verify peak RSS (MiB) |")
        out.append("|---|---:|---:|---:|---:|")
        small_layout = os.environ.get("SMALL_LAYOUT", "")
        out.append(f"| small ({fixture_line(small_layout).split(' (')[0]}) | {fmt_s(wall('verify_small'))} | "
                   f"{fmt_s(wall('floor_small'))} | {fmt_ratio(wall('verify_small'), wall('floor_small'))} | "
                   f"{fmt_mib(rss_mib('verify_small'))} |")
        out.append(f"| large ({fixture_line(os.environ['LAYOUT']).split(' (')[0]}) | {fmt_s(wall('verify'))} | "
                   f"{fmt_s(floor)} | {fmt_ratio(wall('verify'), floor)} | {fmt_mib(rss_mib('verify'))} |")
        out.append("")
        if rss_mib("verify_small") and rss_mib("verify"):
            growth = rss_mib("verify") / rss_mib("verify_small") - 1
            targets.append(("RSS flat: large within 10 % of small", f"{growth * 100:+.0f} %", abs(growth) <= 0.10))

    if "qemu_all" in rows or "assemble" in rows:
        out.append("**Runs and assemble**")
        out.append("")
        out.append("| measurement | best wall (s) | compared with | its wall (s) | ratio | peak RSS (MiB) | exit codes |")
        out.append("|---|---:|---|---:|---:|---:|---|")
    if "qemu_all" in rows:
        r = rows["qemu_all"]
        singles = [(wall(k), k) for k in demo_keys if wall(k) is not None]
        slow = max(singles) if singles else (None, None)
        name = slow[1][len("qemu_"):] if slow[1] else "–"
        cmd = r["cmd"] + (f" — *{r['note']}*" if r["note"] else "")
        out.append(f"| {cmd} | {fmt_s(wall('qemu_all'))} | slowest single run ({name}) | {fmt_s(slow[0])} | "
                   f"{fmt_ratio(wall('qemu_all'), slow[0])} | {fmt_mib(rss_mib('qemu_all'))} | {r['rc'] or '–'} |")
        if "qemu_bare" in rows:
            rb = rows["qemu_bare"]
            bare = [(wall(k), k) for k in bare_keys if wall(k) is not None]
            bslow = max(bare)[0] if bare else None
            cmd = rb["cmd"] + (f" — *{rb['note']}*" if rb["note"] else "")
            out.append(f"| {cmd} | {fmt_s(wall('qemu_bare'))} | the slowest of them alone | {fmt_s(bslow)} | "
                       f"{fmt_ratio(wall('qemu_bare'), bslow)} | {fmt_mib(rss_mib('qemu_bare'))} | {rb['rc'] or '–'} |")
        if wall("qemu_all") and slow[0]:
            ratio = wall("qemu_all") / slow[0]
            targets.append(("parallel qemu runs ≤ 2× the slowest single", f"{ratio:.2f}×", ratio <= 2))
    if "assemble" in rows:
        r = rows["assemble"]
        sk = wall("assemble_skopeo")
        if r["note"] and not r["wall"]:
            out.append(f"| assemble — *{r['note']}* | – | – | – | – | – | – |")
        else:
            for key in ["assemble", "assemble_norun"]:
                if key in rows:
                    rr = rows[key]
                    cmd = rr["cmd"] + (f" — *{rr['note']}*" if rr["note"] else "")
                    out.append(f"| {cmd} | {fmt_s(wall(key))} | skopeo copy --all of the result | {fmt_s(sk)} | "
                               f"{fmt_ratio(wall(key), sk)} | {fmt_mib(rss_mib(key))} | {rr['rc'] or '–'} |")
            if "assemble_none" in rows:
                rr = rows["assemble_none"]
                sk_none = wall("assemble_none_skopeo")
                out.append(f"| {rr['cmd']} | {fmt_s(wall('assemble_none'))} | skopeo copy --all of that result | "
                           f"{fmt_s(sk_none)} | {fmt_ratio(wall('assemble_none'), sk_none)} | "
                           f"{fmt_mib(rss_mib('assemble_none'))} | {rr['rc'] or '–'} |")
            if "assemble_peer" in rows:
                rr = rows["assemble_peer"]
                cmd = rr["cmd"] + (f" — *{rr['note']}*" if rr["note"] else "")
                out.append(f"| {cmd} | {fmt_s(wall('assemble_peer'))} | mab-verify assemble --no-run | "
                           f"{fmt_s(wall('assemble_norun'))} | {fmt_ratio(wall('assemble_norun'), wall('assemble_peer'))} "
                           f"(assemble ÷ this) | {fmt_mib(rss_mib('assemble_peer'))} | {rr['rc'] or '–'} |")
            if wall("assemble") and sk:
                ratio = wall("assemble") / sk
                targets.append(("assemble ≤ 1.2× skopeo copy --all", f"{ratio:.2f}×", ratio <= 1.2))
            if wall("assemble_norun") and wall("assemble_peer"):
                ratio = wall("assemble_norun") / wall("assemble_peer")
                targets.append(("(informative) assemble --no-run vs skopeo doing the same gzip work",
                                f"{ratio:.2f}×", ratio <= 1.2))
            if wall("assemble_norun") and sk:
                ratio = wall("assemble_norun") / sk
                targets.append(("assemble --no-run ≤ 1.2× skopeo copy --all", f"{ratio:.2f}×", ratio <= 1.2))
            if wall("assemble_none") and wall("assemble_none_skopeo"):
                ratio = wall("assemble_none") / wall("assemble_none_skopeo")
                targets.append(("(informative) assemble --no-run --compression none vs skopeo copy --all of that result",
                                f"{ratio:.2f}×", ratio <= 1.2))
    if "qemu_all" in rows or "assemble" in rows:
        out.append("")
        if demo_keys:
            out.append("Single demo runs (best wall, s): " + ", ".join(
                f"{k[len('qemu_'):]} {fmt_s(wall(k))}" for k in demo_keys) + ".")
            out.append("")

    # Issue 16: verify from a registry, and push, on loopback docker-registry instances.
    if any(k in rows for k in ["remote_verify", "push"]):
        out.append("**Registries: remote verify and push** (docker-registry on 127.0.0.1, storage in RAM)")
        out.append("")
        out.append("| measurement | command | best wall (s) | compared with | its wall (s) | ratio | CPU (s) | its CPU (s) | CPU ratio | peak RSS (MiB) | exit codes |")
        out.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
        pull_then_verify = wall("remote_pull") + wall("verify") if wall("remote_pull") and wall("verify") else None
        pull_then_verify_cpu = cpu("remote_pull") + cpu("verify") if cpu("remote_pull") and cpu("verify") else None
        pairs = [
            ("remote_verify", (wall("verify"), cpu("verify")), "local full verify of the same layout (`verify`)"),
            ("remote_verify", (pull_then_verify, pull_then_verify_cpu), "`remote_pull` + local verify (sum of the two rows)"),
            ("remote_pull", (None, None), ""),
            ("push", (wall("push_skopeo"), cpu("push_skopeo")), "`push_skopeo`: skopeo pushing the same bytes"),
            ("push_warm", (wall("push_skopeo"), cpu("push_skopeo")), "`push_skopeo`"),
            ("push_skopeo", (None, None), ""),
        ]
        for key, (base, base_cpu), base_name in pairs:
            if key not in rows:
                continue
            r = rows[key]
            shown = (r["cmd"] + (f" — *{r['note']}*" if r["note"] else "")).replace("|", "\\|")
            out.append(f"| {key} | {shown} | {fmt_s(wall(key))} | {base_name or '–'} | {fmt_s(base)} | "
                       f"{fmt_ratio(wall(key), base)} | {fmt_s(cpu(key))} | {fmt_s(base_cpu)} | "
                       f"{fmt_ratio(cpu(key), base_cpu)} | {fmt_mib(rss_mib(key))} | {r['rc'] or '–'} |")
        out.append("")
        out.append("CPU is user + system time of the command and its children (`/usr/bin/time`); "
                   "the registry's own CPU is not in it. On a loaded machine the CPU ratio is the "
                   "steadier one; the targets are on wall time.")
        out.append("")
        out.append("`push` verifies the layout (here `--no-cache`: a full read) before it uploads and "
                   "reads the registry's copy back; skopeo only copies. `push_warm` is the release "
                   "case, where an earlier verify left the layers' facts in the cache. Every push "
                   "goes to a new, empty registry.")
        out.append("")
        if wall("remote_verify") and wall("verify"):
            ratio = wall("remote_verify") / wall("verify")
            targets.append(("remote verify ≤ 1.3× the local full verify (issue 16)", f"{ratio:.2f}×", ratio <= 1.3))
        if wall("remote_verify") and pull_then_verify:
            ratio = wall("remote_verify") / pull_then_verify
            targets.append(("remote verify ≤ 1.0× skopeo copy docker:// dir: + local verify (issue 16)",
                            f"{ratio:.2f}×", ratio <= 1.0))
        if rss_mib("remote_verify"):
            targets.append(("remote verify peak RSS ≤ 32 MiB (issue 16)", f"{rss_mib('remote_verify'):.0f} MiB",
                            rss_mib("remote_verify") <= 32))
        if wall("push") and wall("push_skopeo"):
            ratio = wall("push") / wall("push_skopeo")
            targets.append(("push (--no-cache) ≤ 1.2× skopeo copy --all oci: docker:// (issue 16)",
                            f"{ratio:.2f}×", ratio <= 1.2))
        if wall("push_warm") and wall("push_skopeo"):
            ratio = wall("push_warm") / wall("push_skopeo")
            targets.append(("push, warm cache ≤ 1.2× skopeo copy --all oci: docker:// (issue 16)",
                            f"{ratio:.2f}×", ratio <= 1.2))

    # Issue 19: the fact cache, the release pipeline and eight platforms.
    if any(k in rows for k in ["cache_warm", "cache_cold", "release", "verify_p8"]):
        out.append("**Fact cache, release pipeline, eight platforms**")
        out.append("")
        out.append("| measurement | command | best wall (s) | compared with | its wall (s) | ratio | CPU (s) | its CPU (s) | CPU ratio | peak RSS (MiB) | exit codes |")
        out.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
        floor = wall("floor")
        pairs = [
            ("cache_warm", "floor", "one-pass floor"),
            ("cache_cold", "verify", "the same verify with --no-cache"),
            ("release", "release_base", "one verify + upload"),
            ("verify_p8", "floor_p8", "its one-pass floor"),
        ]
        for key, base, base_name in pairs:
            if key not in rows:
                continue
            r = rows[key]
            shown = r["note"] or r["cmd"]
            out.append(f"| {key} | {shown} | {fmt_s(wall(key))} | {base_name} | {fmt_s(wall(base))} | "
                       f"{fmt_ratio(wall(key), wall(base))} | {fmt_s(cpu(key))} | {fmt_s(cpu(base))} | "
                       f"{fmt_ratio(cpu(key), cpu(base))} | {fmt_mib(rss_mib(key))} | {r['rc'] or '–'} |")
        out.append("")
        if wall("cache_warm") and floor:
            ratio = wall("cache_warm") / floor
            targets.append(("warm-cache re-verify ≤ 0.15× the floor", f"{ratio:.2f}×", ratio <= 0.15))
        if wall("cache_cold") and wall("verify"):
            ratio = wall("cache_cold") / wall("verify")
            targets.append(("cold verify with the cache ≤ 1.05× --no-cache", f"{ratio:.2f}×", ratio <= 1.05))
        if wall("release") and wall("release_base"):
            ratio = wall("release") / wall("release_base")
            targets.append(("assemble → gate → push ≤ 1.5× one verify + upload", f"{ratio:.2f}×", ratio <= 1.5))
        if wall("verify_p8") and wall("floor_p8"):
            ratio = wall("verify_p8") / wall("floor_p8")
            targets.append(("8 platforms ≤ 0.6× their floor", f"{ratio:.2f}×", ratio <= 0.6))
        if rss_mib("verify_p8"):
            targets.append(("8 platforms peak RSS ≤ 32 MiB", f"{rss_mib('verify_p8'):.0f} MiB", rss_mib("verify_p8") <= 32))
            small = rss_mib("verify_small") if "verify_small" in rows else (
                rss_mib("verify") if os.environ.get("MODE") == "small" else None)
            if small:
                d = rss_mib("verify_p8") - small
                targets.append(("8-platform RSS within 8 MiB of the small fixture's", f"{d:+.0f} MiB", d <= 8))
        p8 = os.environ.get("P8_LAYOUT")
        if p8:
            out.append(f"8-platform fixture: {fixture_line(p8)}.")
            out.append("")

    if targets:
        out.append("**Targets**" + (" (printed, not asserted: CI smoke)" if ci else ""))
        out.append("")
        out.append("| target | measured | met |")
        out.append("|---|---:|---|")
        for what, measured, met in targets:
            out.append(f"| {what} | {measured} | {'yes' if met else '**no**'} |")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
