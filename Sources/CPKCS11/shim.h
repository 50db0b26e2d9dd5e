// The PKCS#11 v2.40 interface as p11-kit ships it. Modules are loaded with dlopen at run time,
// so nothing is linked here.
#include <p11-kit/pkcs11.h>
