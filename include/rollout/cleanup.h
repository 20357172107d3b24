/* Scope-bound cleanup (__attribute__((cleanup))) and explicit ownership moves. */
#ifndef ROLLOUT_CLEANUP_H
#define ROLLOUT_CLEANUP_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

void cleanup_freep(void *p);
void cleanup_closep(int *fd);
void cleanup_fclosep(FILE **f);
void cleanup_closedirp(DIR **d);
void cleanup_strvp(char ***v);

#define _cleanup_free_ __attribute__((cleanup(cleanup_freep)))
#define _cleanup_close_ __attribute__((cleanup(cleanup_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(cleanup_fclosep)))
#define _cleanup_closedir_ __attribute__((cleanup(cleanup_closedirp)))
#define _cleanup_strv_ __attribute__((cleanup(cleanup_strvp)))

/* Take ownership out of a cleanup variable. */
#define steal_ptr(pp)                                                                              \
	({                                                                                         \
		__typeof__(*(pp)) stolen_ = *(pp);                                                 \
		*(pp) = NULL;                                                                      \
		stolen_;                                                                           \
	})
#define steal_fd(fdp)                                                                              \
	({                                                                                         \
		int stolen_ = *(fdp);                                                              \
		*(fdp) = -1;                                                                       \
		stolen_;                                                                           \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
