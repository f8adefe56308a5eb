/* A stand-in for libcuda.so.1 that runs no kernel: it lets the CPU test suite
 * drive fkd_ops' GPU launcher (kernels/gpu_launch.cc) through the driver API,
 * as the TensorFlow op kernels and the pybind11 face do on a GPU.
 *
 * One device whose compute capability and driver version come from
 * FAKE_CUDA_CC ("8.6") and FAKE_CUDA_DRIVER ("12050"). It keeps a current
 * context per thread, refuses calls that need one without one, loads only the
 * images a real driver would (a cubin of the device's major and a minor not
 * above it, or PTX not newer than the device), finds a function only if its name
 * is in the loaded image, and writes each module load and launch to the file
 * named by FAKE_CUDA_LOG: "load <target>" and
 * "launch <kernel> <grid> <block> <first 8 bytes of the job, hex>".
 * Built by python_tests/gpu/test_gpu_launcher.py with the system C compiler. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;

enum {
  OK = 0,
  INVALID_VALUE = 1,
  INVALID_IMAGE = 200,
  INVALID_CONTEXT = 201,
  NO_BINARY_FOR_GPU = 209,
  NOT_FOUND = 500,
};

static int the_context;      /* the primary context's address */
static __thread void* stack[16];
static __thread int depth;
static int major = 8, minor = 6, driver = 12050;

typedef struct {
  const unsigned char* image;
  size_t size;
  char target[32];
} Module;
typedef struct {
  Module* module;
  char name[128];
} Function;

static void log_line(const char* text) {
  const char* path = getenv("FAKE_CUDA_LOG");
  if (!path) return;
  FILE* f = fopen(path, "a");
  if (!f) return;
  fputs(text, f);
  fputc('\n', f);
  fclose(f);
}

static void* current(void) { return depth > 0 ? stack[depth - 1] : NULL; }

__attribute__((constructor)) static void configure(void) {
  const char* cc = getenv("FAKE_CUDA_CC");
  const char* version = getenv("FAKE_CUDA_DRIVER");
  if (cc) sscanf(cc, "%d.%d", &major, &minor);
  if (version) driver = atoi(version);
}

CUresult cuInit(unsigned flags) { (void)flags; return OK; }
CUresult cuDriverGetVersion(int* v) { *v = driver; return OK; }
CUresult cuGetErrorName(CUresult r, const char** s) {
  switch (r) {
    case NO_BINARY_FOR_GPU: *s = "CUDA_ERROR_NO_BINARY_FOR_GPU"; return OK;
    case INVALID_CONTEXT: *s = "CUDA_ERROR_INVALID_CONTEXT"; return OK;
    case NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; return OK;
    case INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; return OK;
    default: *s = "CUDA_ERROR_UNKNOWN"; return OK;
  }
}
CUresult cuGetErrorString(CUresult r, const char** s) { (void)r; *s = "fake driver"; return OK; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return OK; }
CUresult cuDeviceGet(int* d, int i) { *d = i; return i == 0 ? OK : INVALID_VALUE; }
CUresult cuDeviceGetName(char* name, int len, int d) {
  (void)d;
  snprintf(name, (size_t)len, "Fake GPU %d.%d", major, minor);
  return OK;
}
CUresult cuDeviceGetAttribute(int* v, int attribute, int d) {
  (void)d;
  if (attribute == 75) { *v = major; return OK; }
  if (attribute == 76) { *v = minor; return OK; }
  return INVALID_VALUE;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, int d) { (void)d; *c = &the_context; return OK; }
CUresult cuCtxGetCurrent(CUcontext* c) { *c = current(); return OK; }
CUresult cuCtxSetCurrent(CUcontext c) {
  if (depth == 0) depth = 1;
  stack[depth - 1] = c;
  return OK;
}
CUresult cuCtxPushCurrent_v2(CUcontext c) {
  if (depth == 16) return INVALID_VALUE;
  stack[depth++] = c;
  return OK;
}
CUresult cuCtxPopCurrent_v2(CUcontext* c) {
  if (depth == 0) return INVALID_CONTEXT;
  *c = stack[--depth];
  return OK;
}
CUresult cuCtxGetDevice(int* d) {
  if (!current()) return INVALID_CONTEXT;
  *d = 0;
  return OK;
}
/* Streams other than the special handles belong to the primary context. */
CUresult cuStreamGetCtx(CUstream s, CUcontext* c) {
  uintptr_t h = (uintptr_t)s;
  if (h <= 2) {
    if (!current()) return INVALID_CONTEXT;
    *c = current();
    return OK;
  }
  *c = &the_context;
  return OK;
}

CUresult cuModuleLoadDataEx(CUmodule* m, const void* image, unsigned n, int* options, void** values) {
  (void)n; (void)options; (void)values;
  if (current() != &the_context) return INVALID_CONTEXT;
  const unsigned char* p = (const unsigned char*)image;
  Module* module = calloc(1, sizeof(Module));
  module->image = p;
  if (memcmp(p, "\x7f" "ELF", 4) == 0) {
    uint64_t shoff; uint16_t shentsize, shnum;
    uint32_t flags;
    memcpy(&flags, p + 48, 4);
    memcpy(&shoff, p + 0x28, 8);
    memcpy(&shentsize, p + 0x3A, 2);
    memcpy(&shnum, p + 0x3C, 2);
    module->size = shoff + (size_t)shentsize * shnum;
    int sm = (int)(flags & 0xFF);
    if (sm / 10 != major || sm % 10 > minor) { free(module); return NO_BINARY_FOR_GPU; }
    snprintf(module->target, sizeof(module->target), "sm_%d", sm);
  } else {
    const char* target = strstr((const char*)p, "\n.target sm_");
    if (!target) { free(module); return INVALID_IMAGE; }
    int sm = atoi(target + 12);
    if (sm > 10 * major + minor) { free(module); return NO_BINARY_FOR_GPU; }
    module->size = strlen((const char*)p);
    snprintf(module->target, sizeof(module->target), "compute_%d", sm);
  }
  char line[64];
  snprintf(line, sizeof(line), "load %s", module->target);
  log_line(line);
  *m = module;
  return OK;
}

CUresult cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
  Module* module = (Module*)m;
  char key[160];
  if (module->target[0] == 's') {
    snprintf(key, sizeof(key), "%c%s", '\0', name); /* a string table entry: \0name\0 */
    if (!memmem(module->image, module->size, key, strlen(name) + 2)) return NOT_FOUND;
  } else {
    snprintf(key, sizeof(key), ".entry %s(", name);
    if (!memmem(module->image, module->size, key, strlen(key))) return NOT_FOUND;
  }
  Function* fn = calloc(1, sizeof(Function));
  fn->module = module;
  snprintf(fn->name, sizeof(fn->name), "%s", name);
  *f = fn;
  return OK;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, CUstream s, void** params, void** extra) {
  (void)s; (void)extra;
  if (current() != &the_context) return INVALID_CONTEXT;
  if (gy != 1 || gz != 1 || by != 1 || bz != 1 || shared != 0 || !params || !params[0]) return INVALID_VALUE;
  if (bx == 0 || bx > 1024 || bx % 32 != 0) return INVALID_VALUE;
  const Function* fn = (const Function*)f;
  uint64_t first;
  memcpy(&first, params[0], 8);
  char line[256];
  snprintf(line, sizeof(line), "launch %s %u %u %llx", fn->name, gx, bx, (unsigned long long)first);
  log_line(line);
  return OK;
}
