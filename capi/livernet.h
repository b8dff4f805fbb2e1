/* livernet C API: classify CT lesion patches with a model trained by livernet's tools/train.
 *
 * Stable C interface (version LIVERNET_API_VERSION) of the shared library liblivernet, for programs in C,
 * C++ or anything with a C foreign-function interface (PACS plugins, 3D Slicer or MONAI Deploy operators):
 *
 *   livernet_model* m = livernet_model_load("runs/paper/fold_1/best.h5", "auto");
 *   if (!m) { fprintf(stderr, "%s\n", livernet_last_error()); return 1; }
 *   float probs[2 * 8];
 *   if (livernet_classify_hu(m, patches, 8, 64, 64, probs) != 0) fprintf(stderr, "%s\n", livernet_last_error());
 *   livernet_model_free(m);
 *
 * Patches are given in Hounsfield units; the model file's own preprocessing is applied (resize to its input
 * size, then its HU window, as in training) and the probabilities are calibrated with the temperature the
 * file records (docs/deploy.md).
 *
 * Errors: functions return NULL or -1 and livernet_last_error() says why, in one line naming the file and
 * the problem; no C++ exception ever crosses this interface.
 *
 * Threads: a model may be used by one thread at a time (calls on one model from several threads must be
 * serialised by the caller); different models may be used from different threads at once. The error
 * message is per thread. The library uses OpenMP threads for the CPU work (OMP_NUM_THREADS limits them).
 */
#ifndef LIVERNET_H
#define LIVERNET_H

#ifdef __cplusplus
extern "C" {
#endif

#define LIVERNET_API_VERSION 2 /* 2: livernet_model_patch_options; ensemble model files */

/* LIVERNET_API_VERSION of the library actually loaded, and its livernet version ("0.1.0"). Versions only add
 * functions: a library of a version at least the header's serves a program built with that header. */
int livernet_api_version(void);
const char* livernet_version(void);

/* The last error of this thread ("" when none); valid until the thread's next call into livernet. */
const char* livernet_last_error(void);

typedef struct livernet_model livernet_model;

/* Loads a livernet model file (tools/train's fold_K/best.h5 or final/model.h5, an ensemble file from
 * tools/export --format ensemble whose members' probabilities are averaged, or tools/convert_weights' output
 * with a classifier head) on device "auto" (the GPU when there is one, else the CPU), "cpu", "cuda" or "cuda:N"
 * (NULL: "auto"). NULL on error. */
livernet_model* livernet_model_load(const char* path, const char* device);
/* Frees the model (NULL is allowed). */
void livernet_model_free(livernet_model* model);

/* Number of classes; the name of class k in [0, num_classes) (NULL outside; owned by the model). */
int livernet_model_num_classes(const livernet_model* model);
const char* livernet_model_class_name(const livernet_model* model, int k);
/* The class tools/train reported precision, recall and AUC for (the malignant one), or -1 when the file
 * does not say. */
int livernet_model_positive_class(const livernet_model* model);
/* The side of the square input patches are resized to (299 for the paper's model). */
int livernet_model_input_size(const livernet_model* model);
/* The HU window applied after the resize, and the temperature of the probabilities (1: uncalibrated). */
void livernet_model_window(const livernet_model* model, float* level, float* width);
double livernet_model_temperature(const livernet_model* model);

/* Classifies n square patches in HU, stored one after the other, each height x width row-major
 * (height == width >= 16, finite values), as tools/predict does: probs receives n * num_classes values,
 * patch by patch. Returns 0, or -1 on error (probs is then left unspecified). */
int livernet_classify_hu(livernet_model* model, const float* hu, int n, int height, int width, float* probs);

/* How lesion patches are cut from a volume: tools/extract_lesions' options (--spacing, --size, --margin,
 * --min-volume). Give the values the training data was made with: livernet_model_patch_options() gives them
 * when the model file records them; livernet_patch_options_default() gives extract_lesions' defaults. */
typedef struct {
  double spacing_mm;     /* in-plane spacing of the patches (0.8) */
  int size;              /* patch side in pixels (96) */
  double margin_mm;      /* context kept around the lesion (8) */
  double min_volume_mm3; /* smaller components are left out as noise (20) */
} livernet_patch_options;
livernet_patch_options livernet_patch_options_default(void);
/* The options the model's training patches were cut with, when its file records them (models trained by
 * tools/train on a dataset from tools/extract_lesions); else livernet_patch_options_default(). */
livernet_patch_options livernet_model_patch_options(const livernet_model* model);

/* One lesion of a volume. */
typedef struct {
  int lesion;             /* 1, 2, ... in the order found */
  double voxel[3];        /* centroid in the volume's own voxel indices (i, j, k), continuous */
  double lps_mm[3];       /* centroid in patient coordinates (DICOM LPS, mm) */
  double volume_ml;
  double max_diameter_mm; /* longest in-plane diameter on the slice the patch was cut from */
} livernet_lesion;

/* Classifies the lesions of a CT volume, as tools/predict --ct does. hu (in HU) and mask hold
 * ni * nj * nk values each, i fastest, then j, then k; mask is non-zero on lesion voxels, and every
 * 26-connected component is one lesion. The grid: spacing[3] (mm between voxel centres along i, j, k),
 * origin[3] (LPS mm of voxel (0, 0, 0)) and axes[9] (the unit LPS directions in which i, j and k grow:
 * axes[0..2] for i, axes[3..5] for j, axes[6..8] for k). options NULL: livernet_model_patch_options(model).
 * Returns the number of lesions n (0 when the mask holds none) and, when n > 0, sets *lesions to n records
 * and *probs to n * num_classes probabilities, to be freed with livernet_free; -1 on error. */
int livernet_classify_volume(livernet_model* model, const float* hu, const unsigned char* mask, int ni, int nj, int nk,
                             const double spacing[3], const double origin[3], const double axes[9],
                             const livernet_patch_options* options, livernet_lesion** lesions, float** probs);
/* Frees what livernet_classify_volume returned (NULL is allowed). */
void livernet_free(void* p);

#ifdef __cplusplus
}
#endif

#endif /* LIVERNET_H */
