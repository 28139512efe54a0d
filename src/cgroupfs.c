/* placeholder until the module lands */
#include "error.h"
