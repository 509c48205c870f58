// Usage text of every subcommand, kept apart from the code that runs it so that `rig <command> --help`
// loads nothing else. Common options (--config, --json) are listed once in `rig --help`.

const common = `Common options: --config <file>, --json, --attach <file> (a running rig sim; default $RIG_SIM), -h/--help.`;

export const USAGE = {
  doctor: `Usage: rig doctor [station] [--config <file>] [--json]

Checks each part of a station and prints a table: the config entry and its secret, the station lock, the
module's serial port (exists, opens), the module (answers AT; ATI, AT+QGMR, AT+QIOTINFO? for its QuecThing
version), openocd (installed, its version), the probe (connects, examines the target), the power lines and
Firmata boards (answer, read back their level). For the virtual station the simulator is started first.
Without a station name every configured station is checked.

Each failed check says what to do about it. Exit code 0 when every check passes, 1 when one fails,
2 when the config itself is invalid.`,

  at: `Usage: rig at <station> [command...] [--timeout <ms>] [--config <file>] [--json]

Without a command: an interactive AT console on the station's module port. Lines you type are sent as AT
commands; answers, +QIOTEVT events (decoded: "7,10700 ota-plan …") and other URCs are printed as they
come. History (arrow keys) is kept in ~/.rig_at_history. Type .help for console commands, .quit or Ctrl-D
to leave.

With commands (e.g. rig at bench-2 'AT+QIOTINFO?'): sends each one, prints the answer lines and exits:
0 when every command answered OK, 1 on ERROR/+CME ERROR, 69 when the module did not answer.

  --timeout <ms>   per command (default: the station's command timeout)

${common}`,

  inventory: `Usage: rig inventory [station...] [--with-virtual] [--config <file>] [--json]

The stations of this host and what each one is, read live: module (ATI), firmware (AT+QGMR), IMEI (AT+GSN),
QuecThing version (AT+QIOTINFO?), probe adapter and serial number, target family and IDCODE; and the last
health check each station had on this host (npm run nightly runs one first; kept in $RIG_STATE_DIR, default
~/.local/state/sota-rig). Each station is opened, read and closed in turn (its lock is taken: a station in
use is listed as not read). Without names: every station of the config, the virtual ones only when no
hardware is configured or with --with-virtual. --json prints the inventory a farm's merge job gives to
npm run report (--inventory). Exit 0 when every station was read, 69 when one was not.

${common}`,

  power: `Usage: rig power <station> <line> on|off|cycle [--off-ms <ms>] [--hold] [--config <file>] [--json]
       rig power <station> safe [--config <file>] [--json]

Drives one of the station's power or reset lines (names as in the config; the virtual station has
module-vbat, module-reset, target-vdd, target-nrst) and reads its level back.
  on|off        set the line ("on" is the running level: supply on, reset released)
  cycle         off for --off-ms (default 2000), then on again
  --hold        keep the level until Ctrl-C; otherwise the line returns to its configured safe level when
                rig exits (every rig command leaves the station safe)
  safe          every line to its safe level, and any OpenOCD still running for the station's probe stopped;
                opens neither the module nor the probe, so it works on a station that is broken (a CI job's
                clean-up step). A virtual station has nothing to switch: it ends with its rig process.

${common}`,

  flash: `Usage: rig flash <station> <image> [--address <addr>] [--no-reset] [--force] [--config <file>] [--json]

Programs an image into the target's application slot and verifies it by reading it back over SWD.
  <image>          a version from fixtures/manifest.json (e.g. 2_0_0) or a .bin file
  --address <a>    where to program it (default: the station's layout.slotAddress)
  --force          program even when the flash already holds the image (default: skip, pre-verified)
  --no-reset       leave the core halted (default: reset and run the new image)

${common}`,

  readback: `Usage: rig readback <station> [region] -o <file> [--config <file>] [--json]

Reads target memory over SWD into a file and says what it holds, by its bytes: a release of the manifest
($RIG_MANIFEST or fixtures/manifest.json) or a part of one, erased flash, or unknown bytes and what the
component's version locator (the rig header, an MCUboot header …) makes of them.
  region     slot (default: the application slot, layout.slotAddress/slotSize), flash (the whole flash,
             size as the target reports it), or <address>:<length> (e.g. 0x08000000:0x6000)
  -o <file>  where to write the bytes (required)

${common}`,

  upgrade: `Usage: rig upgrade <station> (--package <name> | --plan <declared plan>) [--mode proxy|dut] [options]

Runs a SOTA upgrade with the proxy flow (the rig plays the MCU's part): a baseline (known image in the
slot, module registered), the plan, the download, the block reads, the image check, programming, read-back
and the version report. Prints live progress and the verdict; writes the run record for rig repro.
With --mode dut the MCU image under test drives the upgrade itself (the station needs its mcu entry: taps,
layout, boot-record decoder): the rig arranges the flash (bootloader and --from in slot A, written only when
the read-back differs; slot B erased; boot record confirmed), resets the MCU, listens on the taps and the
console, injects the faults at the moments it sees, and judges by reading slot A, slot B and the boot record
over SWD: upgraded, rolled-back, failed-intact, refused, bricked or inconsistent.
  --package <name>      a package from fixtures/manifest.json (full_2_0_0, delta_1_0_0_to_2_0_0 …)
  --plan <name>         a plan declared in the station's config (plans.kind 'declared': a plan created in
                        Developer Center's console)
  --from <version>      image the target starts from (default: a delta's source version, else the image
                        the slot already holds when the manifest knows it)
  --fault '<trigger>:<action>'   a fault, repeatable, e.g. 'offset=8192:power-cycle-module',
                        'event=10702#2:network-cut=3000', 'programming:reset-target'
  --cloud-fault <kind>  a cloud-side fault (virtual station: corrupt-next-download, download-error …)
  --expect <outcomes>   outcomes that pass, comma-separated: upgraded, refused, failed-intact; in dut mode
                        also rolled-back, bricked, inconsistent (default upgraded)
  --battery <percent>   the MCU's battery reading (default 100; proxy mode)
  --block-size <bytes>  AT+QIOTOTARD length (default 1024; proxy mode)
  --crc <algorithm>     how 10701's CRC is computed (default crc-32; proxy mode)
  --mode proxy|dut      who plays the MCU: the rig (proxy, default) or the image under test (dut)
  --manifest <file>     the firmware set (default fixtures/manifest.json; dut: fixtures/mcu/manifest.json)
  --bootloader <key>    dut: the bootloader image to arrange at the flash base (default the set's one
                        bootloader without planted defects; none: a bench keeps its own)
  --report-within <ms>  dut: longest from any MCU start to its version report before it counts as bricked
  --settle-within <ms>  dut: longest the whole upgrade may take from the MCU's reset
  Faults in dut mode also take console=<regex> triggers and a time offset after any trigger
  ('after-update3+350ms:power-cycle-target', 'console=swap unit 3/:power-cycle-target').
  -o, --record <file>   where to write the run record (default reports/runs/<station>-<time>.json)

Exit code 0 when the verdict is one of the expected outcomes, 1 when not, 3 when the verdict passed but a
--fault never fired (its trigger did not come: the run did not test what was asked).
${common}`,

  repro: `Usage: rig repro <run-record.json> [--station <name>] [--own-settings] [-o <file>] [--config <file>] [--json]

Replays a recorded run — same package, same starting image, same MCU readings, same fault schedule — on a
station (default: the record's own station when the config has it, else virtual) and compares verdicts.
On a virtual station the record's virtual settings (timeScale, downloadRate, moduleFreeSpace, baud …) are
applied over the station's own, so fault triggers come at the same moments; the package and starting image
come from the record when it carries them (a suite's temporary build), else from fixtures/manifest.json.
  --own-settings        replay with the virtual station's own settings, not the record's
  -o, --record <file>   where to write the new run record (default reports/runs/<station>-repro-<time>.json)

Exit code 0 when the verdict is the same and every recorded fault fired again, 1 when the verdict differs,
3 when the verdict is the same but a fault that fired in the record did not fire (not reproduced).
${common}`,

  sweep: `Usage: rig sweep <station> --package <name> --from <version> [--mode dut|proxy] [options]
       rig sweep --resume <sweep dir> [--budget <min>] [--refine <k>]

A power-fail (or any fault) sweep over an upgrade. Clean runs first measure the upgrade's windows from
what the rig sees (tapped lines, console, module events); then the same upgrade runs once per point with one
fault aimed at a moment of the chosen windows (the latest trigger before it — an event, a block offset, a
console line, =3 … — plus a time offset), each ending in its verdict read over SWD. A point passes when its
verdict is allowed (--allow) and the device then takes the next upgrade (back to --from, or the package
again); bricked, inconsistent and other failures fail it, and its run record is kept for rig repro.
  --mode dut|proxy      who plays the MCU (default dut: the image under test; proxy: the rig)
  --package <name>      the package the sweep delivers (manifest name)
  --from <version>      the image the MCU starts from (manifest key)
  --action <a>[,<b>]    fault actions, each tried at every point (default power-cycle-target in dut mode,
                        power-cycle-module in proxy mode), e.g. power-cycle-target=200,reset-target
  --window <w>[,…]      the windows to sweep (default all). dut: plan, download, reads, install, swap,
                        trial; proxy: plan, download, reads, install, program, report
  --points <N>          moments spread over the windows by their length, at least one each (default 20)
  --every <ms>          or one moment every <ms> of each window
  --refine <k>          k rounds of bisection between neighbouring points where one passes and one fails:
                        the failing window's edges to within a millisecond, or as close as k rounds get
  --budget <min>        start no point that would end after this many minutes (decimals allowed); the
                        sweep stops cleanly and says how to resume
  --allow <outcomes>    verdicts the station's design allows (default upgraded,rolled-back,failed-intact)
  --no-next             do not offer the next upgrade after each passing point
  --calibrate <n>       clean runs the calibration merges (default 3: each window at its median length,
                        each trigger at its median time into it, so one run's late console lines move nothing)
  --manifest <file>     the firmware set (default fixtures/mcu/manifest.json in dut mode)
  --bootloader <key>    dut: the bootloader arranged at the flash base (default the set's correct one)
  --report-within <ms>, --settle-within <ms>
                        dut: bounds of every point run (default from the calibration: 3× its longest start
                        → version report plus twice the margin; 6× its observation plus 3 such bounds)
  -o, --out <dir>       the sweep directory (default reports/runs/sweep-<station>-<time>)
  --resume <dir>        carry on with a stopped sweep: its points without a result (and those that ended in
                        the rig's own trouble), then its bisection rounds (--refine raises them)

The directory holds sweep.json (settings, calibration, points, results), calibration.json, the records of
every point that did not pass (records/), and heat-strip.svg. Prints the matrix (window × action → verdict
counts), the failing points with their rig repro line, the failing windows' edges and the time per point.
Exit code 0 every point passed, 1 a point failed, 3 a point's fault never fired, 69 the station broke (3
points in a row ended in the rig's own trouble), 75 stopped by --budget, 130 Ctrl-C (resumable).
${common}`,

  sim: `Usage: rig sim [--target stm32f1x|stm32f4x] [--time-scale <x>] [--flash-image <file>] [--json] [-- <sim options>]

Runs the virtual station (sim/main) in the foreground and prints where its parts are: the module's AT
port, the Firmata relay board and its pins, the STM32's Bus Pirate port and remote_bitbang endpoint,
the admin API URL.
Options after -- go to sim/main unchanged (e.g. -- --baud 921600 --url-delay-ms 500).
--json prints the sim's own JSON line instead. Ctrl-C stops it (ptys and sockets removed).

It also writes station.json in its run directory and prints \`export RIG_SIM=<that file>\`: with RIG_SIM set
(or --attach <file>), every other station command on a virtual station uses this running one instead of
starting its own, so flash contents, module state and plans carry from one command to the next (rig flash,
then rig readback; rig power … cycle, then rig at). Commands still take the station's lock one at a time and
leave its power lines at their safe levels; the station itself stops only with rig sim.`,

  image: `Usage: rig image add <file> [--component <name>] [--version <v>] [--locator <spec>] [--manifest <file>]
       rig image identify <file> [--locator <spec>] [--manifest <file>]
       rig image list [--manifest <file>]

The releases of an MCU component, kept in a manifest (images, full packages, VCDIFF deltas, hashes).
  add        adds an ordinary firmware file (objcopy .bin, an MCUboot-signed image …) as a release: its
             bytes (SHA-256 over its length) are the release; its version is --version, or what the
             component's locator finds in it (both: they must agree). Writes the image, its full package
             and a delta from every earlier release (xdelta3), then the manifest. Creates the manifest
             (--component needed) with the locator given, else the one the image shows (the rig header,
             an MCUboot header), else none.
  identify   what a file is: a release of the manifest (by its bytes), or what its locator says.
  list       the manifest's releases and packages.
  --manifest <file>  the manifest (default $RIG_MANIFEST, else the project's fixtures/manifest.json, which
                     add does not write: it is generated by scripts/make-fixtures.ts)
  --locator <spec>   how the component's images name their version:
                       rig-header[:offset=0x200]      the rig's own 64-byte header
                       mcuboot[:offset=0x0,format={major}.{minor}.{revision}]   an MCUboot image header
                       string:offset=0x400[,length=32]   a version string at a fixed offset
                       'pattern:<regex>'              the first match (group "version", else group 1)
                       none                           no version in the image: --version names it
  --load-address <a> when creating: the address the images are linked for (default 0x08000000)

Exit code 0 when added (or already there with the same bytes), 1 when the image contradicts the
manifest or its own header (another version, other bytes under a known version), 2 for a manifest
that is invalid or of another component, 64 for a usage error (no version anywhere, an unknown locator).
--json prints the result as JSON.`,

  report: `Usage: rig report [report options]

Builds the Allure report from reports/allure-results into reports/allure-report (scripts/report.mjs;
rig report --help-report for its options). Open reports/allure-report/index.html in a browser.`,
} as const;
