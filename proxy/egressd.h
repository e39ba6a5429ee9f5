/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_SHELL_H
#define EGRESSD_SHELL_H
/* Shared declarations of the daemon shells (proxy/*.c). */
#include "../config/conf.h"
#endif
