/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_SHELL_H
#define EGRESSD_SHELL_H
/* Shared declarations of the daemon shells (the .c files of proxy/). */
#include "../config/conf.h"

/* Subcommands dispatched from main.c. argv[0] is the subcommand name. Exit status. */
int cmd_run(int argc, char **argv);   /* run.c:   egressd run [...] -- CMD [ARG]... */
int cmd_learn(int argc, char **argv); /* learn.c: egressd learn [LOG]... */

/* main.c: "egressd " PROGRAM_VERSION, for --version and help texts. */
#define EGRESSD_PROGRAM "egressd"

#endif
