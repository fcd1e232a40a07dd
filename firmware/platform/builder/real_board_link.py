"""extra_scripts for real-board envs on registry platforms (e.g. ststm32):
use Octo's own startup code and pass the FPU/ABI flags to the linker too."""

Import("env")  # noqa: F821  (SCons injects Import)

machine = [f for f in env.get("CCFLAGS", []) if isinstance(f, str) and f.startswith(("-mfloat-abi", "-mfpu"))]  # noqa: F821
env.Append(LINKFLAGS=machine + ["-nostartfiles", "-L$PROJECT_DIR/ld"])  # noqa: F821
