/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_FLOW_H
#define EGRESSD_FLOW_H
#include "engine.h"
#endif
