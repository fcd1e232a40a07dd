/* octo_tflm_main.cc - the TFLM side of the side-by-side runs: a converted model through TensorFlow Lite Micro's
 * interpreter with CMSIS-NN kernels, on an Octo board (virtual-m4: the mps2 board support, UART0, TIMER0).
 *
 * Built by host_tools/board/tflm_firmware.py with exactly the files of Octo's TFLM export (<model>/tflm/:
 * model_data.h/.cc, op_resolver.h, the suggested arena size) plus a generated octo_tflm_inputs.h:
 *   OCTO_TFLM_MODEL        the model array (g_<name>)
 *   OCTO_TFLM_ARENA        the export's suggested arena size (k<name>_arena_size)
 *   OCTO_TFLM_N, OCTO_TFLM_INPUT_BYTES, k_octo_tflm_inputs[N][INPUT_BYTES]   int8 inputs
 * Prints on UART0, one line each, then exits QEMU through semihosting:
 *   tflm arena_size <bytes>
 *   tflm infer <i> ticks <ticks> instructions <ticks * 1e9 / timer_hz>   (instructions under -icount shift=0)
 *   tflm out <i> <hex of the output tensor's bytes>
 *   tflm arena_used <MicroInterpreter::arena_used_bytes()>
 *   tflm done
 * No heap: the interpreter allocates from the static arena only. */
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "model_data.h"
#include "octo/octo_board.h"
#include "octo_tflm_inputs.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

alignas(16) uint8_t s_arena[OCTO_TFLM_ARENA];

void put(const char *s) { (void)octo_board_uart_write(nullptr, reinterpret_cast<const uint8_t *>(s), strlen(s)); }

void put_u64(uint64_t v) {
    char buf[21];
    size_t i = sizeof buf - 1;
    buf[i] = '\0';
    do {
        buf[--i] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    put(&buf[i]);
}

void put_hex(const uint8_t *data, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char pair[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        pair[0] = hex[data[i] >> 4];
        pair[1] = hex[data[i] & 0xFu];
        put(pair);
    }
}

[[noreturn]] void fail(const char *what) {
    put("tflm error ");
    put(what);
    put("\n");
    octo_board_exit(1);
    for (;;) {
    }
}

}  // namespace

/* The interpreter never deletes anything; these keep libstdc++'s heap-backed operator delete (and malloc) out of
 * the image, and fail loudly should a virtual destructor ever be called through delete. */
void operator delete(void *) noexcept { fail("operator delete"); }
void operator delete(void *, std::size_t) noexcept { fail("operator delete"); }
extern "C" void __cxa_pure_virtual() { fail("pure virtual call"); }

int main() {
    octo_board_init();
    const uint32_t timer_hz = octo_board_info()->timer_hz;
    put("tflm arena_size ");
    put_u64(sizeof s_arena);
    put("\n");

    const tflite::Model *model = tflite::GetModel(OCTO_TFLM_MODEL);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        fail("schema version");
    }
    OctoOpResolver resolver;
    if (OctoRegisterOps(resolver) != kTfLiteOk) {
        fail("op resolver");
    }
    tflite::MicroInterpreter interpreter(model, resolver, s_arena, sizeof s_arena);
    if (interpreter.AllocateTensors() != kTfLiteOk) {
        fail("AllocateTensors (arena too small?)");
    }
    TfLiteTensor *input = interpreter.input(0);
    TfLiteTensor *output = interpreter.output(0);
    if (input == nullptr || output == nullptr || input->type != kTfLiteInt8 ||
        input->bytes != OCTO_TFLM_INPUT_BYTES) {
        fail("input tensor is not int8 of the expected size");
    }
    for (unsigned i = 0; i < OCTO_TFLM_N; i++) {
        memcpy(input->data.int8, k_octo_tflm_inputs[i], OCTO_TFLM_INPUT_BYTES);
        const uint64_t t0 = octo_board_ticks();
        const TfLiteStatus status = interpreter.Invoke();
        const uint64_t ticks = octo_board_ticks() - t0;
        if (status != kTfLiteOk) {
            fail("Invoke");
        }
        put("tflm infer ");
        put_u64(i);
        put(" ticks ");
        put_u64(ticks);
        put(" instructions ");
        put_u64(ticks * 1000000000ull / timer_hz);
        put("\ntflm out ");
        put_u64(i);
        put(" ");
        put_hex(output->data.uint8, output->bytes);
        put("\n");
    }
    put("tflm arena_used ");
    put_u64(interpreter.arena_used_bytes());
    put("\ntflm done\n");
    octo_board_exit(0);
    return 0;
}
