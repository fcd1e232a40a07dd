"""SCons build script of the Octo dev-platform (bare-metal Cortex-M, offline).

Compiler: the system arm-none-eabi-gcc (Debian package gcc-arm-none-eabi).
Board data: boards/<name>.json, generated from host_tools/board/boards.py.
'upload' hands the ELF to `octo flash`, which starts QEMU.
"""

import os
import shutil
import sys

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment  # noqa: F401

env = DefaultEnvironment()
board = env.BoardConfig()
octo = board.get("build.octo", {})

if shutil.which("arm-none-eabi-gcc") is None:
    sys.stderr.write(
        "octo: error: arm-none-eabi-gcc not found; install the Debian packages "
        "gcc-arm-none-eabi libnewlib-arm-none-eabi (or run `make setup`)\n"
    )
    env.Exit(1)

machine = ["-mcpu=%s" % board.get("build.cpu"), "-mthumb"]
if octo.get("fpu"):
    machine += ["-mfloat-abi=hard", "-mfpu=%s" % octo["fpu"]]
else:
    machine += ["-mfloat-abi=soft"]

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-gcc",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.text|\.ARM\.exidx|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

env.Append(
    ASFLAGS=machine + ["-x", "assembler-with-cpp"],
    CCFLAGS=machine
    + [
        "-O2",
        "-g3",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-common",
    ],
    CFLAGS=["-std=c99"],
    CPPDEFINES=[
        ("OCTO_BOARD_NAME", '\\"%s\\"' % board.get("build.mcu")),
        ("OCTO_BOARD_CPU", '\\"%s\\"' % board.get("build.cpu")),
    ],
    CPPPATH=["$PROJECT_DIR/include"],
    LINKFLAGS=machine
    + [
        "-nostartfiles",
        "--specs=nano.specs",
        "--specs=nosys.specs",
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
        "-L$PROJECT_DIR/ld",
        # OCTO_LDSCRIPT: a benchmark may link against a larger RAM budget (speed only, never a real board)
        "-T%s" % os.environ.get("OCTO_LDSCRIPT", octo.get("ldscript")),
    ],
    LIBS=["c", "m", "gcc"],
)

# A converted model (octo convert -o DIR writes DIR/octo/model.c) is linked in
# when OCTO_MODEL_DIR points at that octo/ folder; `octo build --model` sets it.
# A PASS model folder (`octo pass-train -o DIR` writes DIR/octo/pass_model.c) links the patch-skipping
# video service instead of the dense inference one.
model_dir = os.environ.get("OCTO_MODEL_DIR")
if model_dir and os.path.isfile(os.path.join(model_dir, "pass_model.c")):
    env.Append(CPPDEFINES=["OCTO_WITH_PASS"], CPPPATH=[model_dir])
    env.BuildSources(os.path.join("$BUILD_DIR", "octo_model"), model_dir, src_filter="+<pass_model.c>")
elif model_dir:
    if not os.path.isfile(os.path.join(model_dir, "model.c")):
        sys.stderr.write("octo: error: OCTO_MODEL_DIR=%s has no model.c (run `octo convert` first)\n" % model_dir)
        env.Exit(1)
    env.Append(CPPDEFINES=["OCTO_WITH_MODEL"], CPPPATH=[model_dir])
    env.BuildSources(os.path.join("$BUILD_DIR", "octo_model"), model_dir, src_filter="+<model.c>")

# A training configuration (converter/train_plan.py writes train_model.c) is
# linked in when OCTO_TRAIN_DIR points at its folder; `octo train` sets it.
train_dir = os.environ.get("OCTO_TRAIN_DIR")
if train_dir:
    if not os.path.isfile(os.path.join(train_dir, "train_model.c")):
        sys.stderr.write("octo: error: OCTO_TRAIN_DIR=%s has no train_model.c (run `octo train`)\n" % train_dir)
        env.Exit(1)
    env.Append(CPPDEFINES=["OCTO_WITH_TRAIN"], CPPPATH=[train_dir])
    env.BuildSources(os.path.join("$BUILD_DIR", "octo_train"), train_dir, src_filter="+<train_model.c>")

target_elf = env.BuildProgram()
target_size = env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(target_size)

upload = env.Alias(
    "upload",
    target_elf,
    env.VerboseAction(
        '"$PYTHONEXE" -m host_tools.cli flash --board %s --elf "$SOURCE"' % board.get("build.mcu"),
        "Starting virtual board %s with $SOURCE" % board.get("build.mcu"),
    ),
)
AlwaysBuild(upload)

Default([target_elf])
