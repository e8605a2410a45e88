#!/usr/bin/env python3
"""Turns the logs of fpga/synth/run.sh into the tables of fpga/REPORT.md.

Usage: report.py OUT_DIR REPORT_MD. Replaces the text between `<!-- synth:begin -->` and
`<!-- synth:end -->` in REPORT_MD (the prose around it is written by hand).
"""
import json
import os
import re
import sys

# What one clock of each module moves, to turn Fmax into throughput.
WORK_PER_CLOCK = {
    "slot_hash": (8, "bytes", "Gbit/s", 8 * 8 / 1000.0),
    "crc32c": (8, "bytes", "Gbit/s", 8 * 8 / 1000.0),
    "dot_i8": (16, "int8 MACs", "GMAC/s", 16 / 1000.0),
    "bloom_probe": (1, "query", "M queries/s", 1.0),
    "token_bucket": (1, "decision", "M decisions/s", 1.0),
    "ac_match": (1, "byte", "Gbit/s", 8 / 1000.0),
    "resp_tokenizer": (1, "byte", "Gbit/s", 8 / 1000.0),
}
MODULES = list(WORK_PER_CLOCK)


def cells(log_path):
    """Cell counts of the last `stat` in a yosys log."""
    if not os.path.exists(log_path):
        return None
    text = open(log_path).read()
    start = text.rfind("Number of cells:")
    if start < 0:
        return None
    counts = {}
    for line in text[start:].splitlines()[1:]:
        match = re.match(r"^\s+(\S+)\s+(\d+)$", line)
        if match:
            counts[match.group(1)] = int(match.group(2))
        elif line.strip() and not line.startswith(" "):
            break
    return counts


def total(counts, pattern):
    return sum(count for name, count in counts.items() if re.fullmatch(pattern, name))


def fmax(report_path):
    if not os.path.exists(report_path):
        return None
    report = json.load(open(report_path))
    values = [clock["achieved"] for clock in report.get("fmax", {}).values()]
    return min(values) if values else None


def main():
    out, report_md = sys.argv[1], sys.argv[2]
    rows = []
    rows.append("| module | target | LUTs | flip-flops | block RAMs | DSPs | other | Fmax (MHz) | throughput at Fmax |")
    rows.append("|---|---|---:|---:|---:|---:|---|---:|---:|")
    for module in MODULES:
        directory = os.path.join(out, module)
        if not os.path.isdir(directory):
            continue
        work, unit, rate_unit, scale = WORK_PER_CLOCK[module]
        for target, log, pnr in (("iCE40 HX8K", "ice40.log", "ice40_pnr.json"),
                                 ("ECP5 25F", "ecp5.log", "ecp5_pnr.json"),
                                 ("Xilinx 7", "xc7.log", None)):
            counts = cells(os.path.join(directory, log))
            if counts is None:
                rows.append("| %s | %s | synthesis failed | | | | | | |" % (module, target))
                continue
            if target.startswith("iCE40"):
                luts = total(counts, "SB_LUT4")
                ffs = total(counts, "SB_DFF.*")
                brams = total(counts, "SB_RAM40_4K")
                dsps = total(counts, "SB_MAC16")
                other = "%d SB_CARRY" % total(counts, "SB_CARRY")
            elif target.startswith("ECP5"):
                luts = total(counts, "LUT4")
                ffs = total(counts, "TRELLIS_FF")
                brams = total(counts, "DP16KD|PDPW16KD")
                dsps = total(counts, "MULT18X18D|ALU54B")
                other = "%d CCU2C, %d DPR16X4" % (total(counts, "CCU2C"), total(counts, "TRELLIS_DPR16X4"))
            else:
                luts = total(counts, "LUT[1-6]")
                ffs = total(counts, "FD[A-Z]*")
                brams = total(counts, "RAMB18E1") + 2 * total(counts, "RAMB36E1")
                dsps = total(counts, "DSP48E1")
                other = "%d CARRY4, %d LUTRAM" % (total(counts, "CARRY4"), total(counts, "RAM(32|64|128|256)[XM].*"))
            frequency = fmax(os.path.join(directory, pnr)) if pnr else None
            if frequency is None:
                fmax_text = "n/a (synthesis only)" if pnr is None else "P&R failed"
                throughput = ""
            else:
                fmax_text = "%.1f" % frequency
                throughput = "%.2f %s" % (frequency * scale, rate_unit)
            rows.append("| %s | %s | %d | %d | %d | %d | %s | %s | %s |" % (
                module, target, luts, ffs, brams, dsps, other, fmax_text, throughput))
    experiment_rows = []
    experiments = os.path.join(out, "experiments")
    if os.path.isdir(experiments):
        experiment_rows.append("| design | LUT4 | CCU2C | flip-flops | ECP5 Fmax (MHz) |")
        experiment_rows.append("|---|---:|---:|---:|---:|")
        for name, directory in [("crc32c (generated XOR networks, pipelined)", os.path.join(out, "crc32c"))] + [
                ("%s (loop over bits)" % entry, os.path.join(experiments, entry)) for entry in sorted(os.listdir(experiments))]:
            counts = cells(os.path.join(directory, "ecp5.log"))
            frequency = fmax(os.path.join(directory, "ecp5_pnr.json"))
            if counts is None or frequency is None:
                continue
            experiment_rows.append("| %s | %d | %d | %d | %.1f |" % (
                name, total(counts, "LUT4"), total(counts, "CCU2C"), total(counts, "TRELLIS_FF"), frequency))
    speed_path = os.path.join(out, "simspeed.json")
    speed_rows = []
    if os.path.exists(speed_path):
        speed = json.load(open(speed_path))
        speed_rows.append("| module | cycles simulated | seconds | cycles per second |")
        speed_rows.append("|---|---:|---:|---:|")
        for module, figures in speed.items():
            speed_rows.append("| %s | %d | %.3f | %.2f M |" % (
                module, figures["cycles"], figures["seconds"], figures["cycles_per_second"] / 1e6))
    generated = "\n".join([
        "<!-- synth:begin -->",
        "<!-- Written by fpga/synth/run.sh (report.py); do not edit by hand. -->",
        "",
        "### Resources and Fmax",
        "",
        "BRAM counts: iCE40 SB_RAM40_4K (4 kbit), ECP5 DP16KD (18 kbit), Xilinx in RAMB18 units (RAMB36 = 2).",
        "",
    ] + rows + [
        "",
        "### Generated XOR networks against a loop over bits (ECP5 25F, same interface)",
        "",
    ] + experiment_rows + [
        "",
        "### Verilator simulation speed (`cargo run --release -p ember-fpga --bin ember-fpga-simspeed`)",
        "",
    ] + speed_rows + ["", "<!-- synth:end -->"])
    text = open(report_md).read() if os.path.exists(report_md) else "<!-- synth:begin -->\n<!-- synth:end -->\n"
    begin = text.index("<!-- synth:begin -->")
    end = text.index("<!-- synth:end -->") + len("<!-- synth:end -->")
    open(report_md, "w").write(text[:begin] + generated + text[end:])


if __name__ == "__main__":
    main()
