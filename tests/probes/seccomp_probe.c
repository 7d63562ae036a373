/* Tries the system calls Docker's seccomp profile refuses (and uname, for
 * custom profiles) and prints "NAME ERRNO" for each, 0 meaning success.
 * Built static by tests/security.rs and run inside a container. Each call
 * is made with harmless arguments: the point is only who answers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/perf_event.h>

static void report(const char *name, long r)
{
	printf("%s %d\n", name, r < 0 ? errno : 0);
	fflush(stdout);
}

#define TRY(name, expr)          \
	do {                     \
		errno = 0;       \
		long r_ = (expr); \
		report(name, r_); \
	} while (0)

int main(void)
{
	char zero[256];
	memset(zero, 0, sizeof zero);

	/* KEYCTL_GET_KEYRING_ID of the session keyring, without creating it. */
	TRY("keyctl", syscall(SYS_keyctl, 0, -3, 0));
	TRY("add_key", syscall(SYS_add_key, "user", "burrow-probe", "x", 1, -3));
	/* BPF_PROG_TYPE-less BPF_MAP_CREATE with an empty attr: EINVAL if let through. */
	TRY("bpf", syscall(SYS_bpf, 0, zero, 64));
	/* UFFD_USER_MODE_ONLY: allowed to ordinary users by the kernel. */
	TRY("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | 1));
	struct perf_event_attr pe;
	memset(&pe, 0, sizeof pe);
	pe.size = sizeof pe;
	pe.type = PERF_TYPE_SOFTWARE;
	pe.config = PERF_COUNT_SW_CPU_CLOCK;
	pe.exclude_kernel = 1;
	pe.exclude_hv = 1;
	pe.disabled = 1;
	TRY("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0));
	/* KCMP_FILE of fd 0 against itself. */
	TRY("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0));
	char src[8] = "abcdefg", dst[8];
	struct iovec local = { dst, sizeof dst }, remote = { src, sizeof src };
	TRY("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
	struct {
		unsigned int bytes;
		int type;
		unsigned char h[128];
	} fh = { 128, 0, { 0 } };
	int mount_id;
	TRY("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &fh, &mount_id, 0));
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* MPOL_DEFAULT everywhere: changes nothing. */
	TRY("mbind", syscall(SYS_mbind, page, 4096, 0, NULL, 0, 0));
	TRY("set_mempolicy", syscall(SYS_set_mempolicy, 0, NULL, 0));
	int mode;
	TRY("get_mempolicy", syscall(SYS_get_mempolicy, &mode, NULL, 0, NULL, 0));
	TRY("move_pages", syscall(SYS_move_pages, 0, 0, NULL, NULL, NULL, 0));
	TRY("io_uring_setup", syscall(SYS_io_uring_setup, 1, zero));
	/* ADDR_NO_RANDOMIZE: not one of the personalities Docker allows. */
	TRY("personality", syscall(SYS_personality, 0x0040000));
	TRY("clone3", syscall(SYS_clone3, NULL, 0));
	struct utsname u;
	TRY("uname", uname(&u));
	TRY("mount", mount("none", "/nonexistent", "tmpfs", 0, NULL));
	/* Last: it changes the namespace the probe runs in. */
	TRY("unshare_user", unshare(CLONE_NEWUSER));
	return 0;
}
