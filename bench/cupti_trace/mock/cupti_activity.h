// LOCAL TEST ONLY (see cupti.h beside this file).
#include "cupti.h"
