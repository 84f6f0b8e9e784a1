/** @file
 * SHK_API: marks every public declaration. dllexport while building the DLL, dllimport for its
 * users, nothing for a static library; default visibility elsewhere (the rest is hidden). */
#ifndef SHMKIT_EXPORT_H
#define SHMKIT_EXPORT_H

#include "shmkit/config.h"

#if SHK_SHARED_LIBRARY && !defined(SHK_INTERNAL_STATIC)
#  if defined(_WIN32) || defined(__CYGWIN__)
#    if defined(SHK_BUILDING_DLL)
#      define SHK_API __declspec(dllexport)
#    else
#      define SHK_API __declspec(dllimport)
#    endif
#  elif defined(__GNUC__)
#    define SHK_API __attribute__((visibility("default")))
#  else
#    define SHK_API
#  endif
#else
#  define SHK_API
#endif

#endif
