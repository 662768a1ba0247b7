/*
 * LD_PRELOAD shim for UML 6.1 on hosts with large XSAVE areas (AVX-512/AMX).
 *
 * The host kernel accepts PTRACE_GETREGSET/SETREGSET(NT_X86_XSTATE) only with
 * the full XSAVE size; UML 6.1 passes its smaller compiled-in buffer and gets
 * EFAULT ("ptrace set fp regs failed, errno = 14"). Here every such call goes
 * through a buffer of the host's full size: GET copies UML's prefix out, SET
 * first reads the current full state, overlays UML's prefix, and writes it
 * back. Test-bed only (docs/testbed.md §3).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <elf.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

#define BIG (64 * 1024)

typedef long (*ptrace_fn)(int, pid_t, void *, void *);

long ptrace(enum __ptrace_request req, ...)
{
	static ptrace_fn real;
	static __thread unsigned char buf[BIG] __attribute__((aligned(64)));
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, req);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");

	if ((req == PTRACE_GETREGSET || req == PTRACE_SETREGSET) &&
	    (long)addr == NT_X86_XSTATE && data != NULL) {
		struct iovec *uiov = data;
		struct iovec full = { buf, sizeof(buf) };
		long r = real(PTRACE_GETREGSET, pid, addr, &full);
		if (r < 0)
			return r;
		size_t n = uiov->iov_len < full.iov_len ? uiov->iov_len : full.iov_len;
		if (req == PTRACE_GETREGSET) {
			memcpy(uiov->iov_base, buf, n);
			uiov->iov_len = n;
			return r;
		}
		memcpy(buf, uiov->iov_base, n);
		return real(PTRACE_SETREGSET, pid, addr, &full);
	}
	return real(req, pid, addr, data);
}
