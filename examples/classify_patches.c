/* classify_patches: the livernet C API from C. Loads a model file, reads square CT patches in HU from a
 * NumPy .npy file (float32, shape (N, H, W) or (N, H, W, 1), C order, as numpy.save writes them) and
 * prints one CSV row per patch: its index, then the probability of each class (the header names them),
 * exactly what tools/predict --preprocess writes for the same file.
 *
 *   classify_patches MODEL.h5 PATCHES.npy [DEVICE]
 */
#include <livernet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a little-endian float32 C-order .npy of 3 or 4 dimensions; returns the data (malloc'ed) or NULL. */
static float* read_npy(const char* path, int* n, int* h, int* w) {
  FILE* f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", path);
    return NULL;
  }
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    fprintf(stderr, "%s: not a .npy file\n", path);
    fclose(f);
    return NULL;
  }
  size_t header_len = pre[8] | (pre[9] << 8);
  if (pre[6] >= 2) { /* version 2 and 3: a 4-byte length */
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) header_len = 0;
    header_len |= ((size_t)more[0] << 16) | ((size_t)more[1] << 24);
  }
  char* header = calloc(header_len + 1, 1);
  float* data = NULL;
  long dims[4] = {1, 1, 1, 1};
  int nd = 0;
  if (!header || fread(header, 1, header_len, f) != header_len) {
    fprintf(stderr, "%s: truncated header\n", path);
  } else if (!strstr(header, "'descr': '<f4'") || strstr(header, "'fortran_order': True")) {
    fprintf(stderr, "%s: expected little-endian float32 in C order\n", path);
  } else {
    const char* s = strstr(header, "'shape': (");
    if (s) {
      s += strlen("'shape': (");
      while (nd < 4) {
        char* end;
        const long v = strtol(s, &end, 10);
        if (end == s) break;
        dims[nd++] = v;
        s = end;
        while (*s == ',' || *s == ' ') ++s;
      }
    }
    if (nd < 3 || (nd == 4 && dims[3] != 1)) {
      fprintf(stderr, "%s: expected a shape (N, H, W) or (N, H, W, 1)\n", path);
    } else {
      const size_t count = (size_t)dims[0] * (size_t)dims[1] * (size_t)dims[2];
      data = malloc(count * sizeof(float));
      if (!data || fread(data, sizeof(float), count, f) != count) {
        fprintf(stderr, "%s: truncated data\n", path);
        free(data);
        data = NULL;
      }
      *n = (int)dims[0];
      *h = (int)dims[1];
      *w = (int)dims[2];
    }
  }
  free(header);
  fclose(f);
  return data;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.h5 PATCHES.npy [DEVICE]\n", argv[0]);
    return 2;
  }
  if (livernet_api_version() < LIVERNET_API_VERSION) {
    fprintf(stderr, "liblivernet has C API version %d, this program was built for %d\n", livernet_api_version(),
            LIVERNET_API_VERSION);
    return 1;
  }
  livernet_model* model = livernet_model_load(argv[1], argc > 3 ? argv[3] : "auto");
  if (!model) {
    fprintf(stderr, "classify_patches: %s\n", livernet_last_error());
    return 1;
  }
  int n = 0, h = 0, w = 0;
  float* hu = read_npy(argv[2], &n, &h, &w);
  if (!hu) {
    livernet_model_free(model);
    return 1;
  }
  const int k = livernet_model_num_classes(model);
  float level = 0, width = 0;
  livernet_model_window(model, &level, &width);
  fprintf(stderr, "classify_patches: livernet %s, %d patches %dx%d -> %dx%d, HU window %g/%g, temperature %g\n",
          livernet_version(), n, h, w, livernet_model_input_size(model), livernet_model_input_size(model), level, width,
          livernet_model_temperature(model));
  float* probs = malloc((size_t)n * (size_t)k * sizeof(float));
  int rc = probs ? livernet_classify_hu(model, hu, n, h, w, probs) : -1;
  if (rc != 0) {
    fprintf(stderr, "classify_patches: %s\n", probs ? livernet_last_error() : "out of memory");
  } else {
    printf("id");
    for (int c = 0; c < k; ++c) printf(",prob_%s", livernet_model_class_name(model, c));
    printf("\n");
    for (int i = 0; i < n; ++i) {
      printf("%d", i);
      for (int c = 0; c < k; ++c) printf(",%.6g", probs[(size_t)i * k + c]);
      printf("\n");
    }
  }
  free(probs);
  free(hu);
  livernet_model_free(model);
  return rc == 0 ? 0 : 1;
}
