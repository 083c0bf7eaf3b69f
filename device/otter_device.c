/*
 * otter simulated device: the launcher, i.e. the device's boot ROM and
 * bootloader.
 *
 * otter-device --flash FILE --factory FW_EXECUTABLE --config CFG
 *              [--factory-version X.Y.Z] [--state-dir DIR] [--log-dir DIR]
 *
 * On first use it creates the flash file and programs the factory executable,
 * wrapped in otter's image header, into slot A, as a production line would.
 * Then, at every boot: the bootloader decides (ota_boot_decide: trial
 * attempts, revert), the chosen slot's executable is copied out of the flash
 * to the state folder, the decision is left in FILE.boot, and the executable
 * runs. Its end decides what follows: exit OTTER_FW_EXIT_RESET or death by a
 * signal (a crash) boots again; exit 0 or a SIGTERM to the launcher (passed on
 * to the firmware) powers the device off. See docs/DEVICE.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "otter/ota_image_header.h"
#include "otter_device_common.h"

/* The committed image crashing this many times in a row stops the device. */
#define CRASHLOOP_LIMIT 5

static volatile sig_atomic_t g_term;
static volatile pid_t g_child;

static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
    if (g_child > 0) {
        kill(g_child, SIGTERM);
    }
}

static void say(const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("[%9.3f] device %s\n", otter_dev_uptime_s(), text);
    fflush(stdout);
}

typedef struct launcher {
    const char *flash_path;
    const char *factory_path;
    const char *config_path;
    const char *state_dir;
    const char *log_dir;
    uint32_t factory_version;
    char state_buf[OTTER_DEV_PATH_MAX];
    char boot_path[OTTER_DEV_PATH_MAX];
    char status_path[OTTER_DEV_PATH_MAX];
    otter_dev_config_t cfg;
    uint8_t pem[8192];
    ota_verify_signer_t signer;
    ota_flashsim_t sim;
    uint8_t mem[OTTER_DEV_FLASH_SIZE];
    ota_port_flash_config_t port_cfg;
} launcher_t;

static launcher_t g_l;

static int open_flash(launcher_t *l, const char *path)
{
    ota_flashsim_geometry_t geo = otter_dev_geometry();
    ota_err_t err = ota_flashsim_open_file(&l->sim, &geo, l->mem, sizeof l->mem, path);
    if (err != OTA_OK) {
        say("error: cannot open the flash %s: %s", path, ota_err_str(err));
        return -1;
    }
    memset(&l->port_cfg, 0, sizeof l->port_cfg);
    l->port_cfg.flash = ota_flashsim_driver(&l->sim);
    if (ota_boot_layout_uniform(&l->port_cfg.flash, &l->port_cfg.layout) != OTA_OK) {
        say("error: the flash cannot hold two slots");
        ota_flashsim_close(&l->sim);
        return -1;
    }
    l->port_cfg.signers = &l->signer;
    l->port_cfg.signer_count = 1;
    l->port_cfg.max_attempts = OTTER_DEV_MAX_ATTEMPTS;
    return 0;
}

/* The tag of the device's type (device_type in its configuration), 0 without one. */
static uint32_t type_tag(const launcher_t *l)
{
    uint32_t tag = 0;
    const char *t = l->cfg.device_type;
    if (t[0] != '\0' && ota_device_type_tag(t, strlen(t), &tag) != OTA_OK) {
        tag = 0; /* the configuration loader refused such a name already */
    }
    return tag;
}

/* Program the factory image into slot A of a new flash file (made for the
 * device's type when its configuration names one). */
static int make_flash(launcher_t *l)
{
    char tmp[OTTER_DEV_PATH_MAX + 16];
    struct stat st;
    FILE *fp;
    uint8_t *img;
    uint32_t len, total, whole, unit;
    ota_image_header_t hdr;
    char ver[24];
    int n = snprintf(tmp, sizeof tmp, "%s.new", l->flash_path);

    if (n < 0 || (size_t)n >= sizeof tmp || stat(l->factory_path, &st) != 0 || st.st_size <= 0 ||
        (uint64_t)st.st_size > OTTER_DEV_FLASH_SIZE) {
        say("error: cannot use the factory image %s", l->factory_path);
        return -1;
    }
    len = (uint32_t)st.st_size;
    total = len + OTA_IMAGE_HEADER_SIZE;
    img = malloc(total + OTTER_DEV_WRITE_UNIT);
    fp = fopen(l->factory_path, "rb");
    if (img == NULL || fp == NULL ||
        fread(img + OTA_IMAGE_HEADER_SIZE, 1, len, fp) != (size_t)len) {
        say("error: cannot read the factory image %s", l->factory_path);
        if (fp != NULL) {
            fclose(fp);
        }
        free(img);
        return -1;
    }
    fclose(fp);
    hdr.version = l->factory_version;
    hdr.image_size = total;
    hdr.flags = 0;
    hdr.security_counter = 0;
    hdr.device_type_tag = type_tag(l);
    (void)ota_image_header_encode(&hdr, img);
    unlink(tmp);
    if (open_flash(l, tmp) != 0) {
        free(img);
        return -1;
    }
    if (total > l->port_cfg.layout.slot_size) {
        say("error: the factory image (%u bytes) does not fit a slot (%u bytes)", (unsigned)total,
            (unsigned)l->port_cfg.layout.slot_size);
        ota_flashsim_close(&l->sim);
        unlink(tmp);
        free(img);
        return -1;
    }
    unit = OTTER_DEV_WRITE_UNIT;
    whole = (total + unit - 1u) / unit * unit;
    memset(img + total, OTTER_DEV_ERASED, whole - total);
    const ota_flash_t *f = &l->port_cfg.flash;
    ota_err_t err = f->program(f->ctx, l->port_cfg.layout.slot_addr[0], img, whole);
    ota_flashsim_close(&l->sim);
    free(img);
    if (err != OTA_OK) {
        say("error: cannot program the factory image: %s", ota_err_str(err));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, l->flash_path) != 0) {
        say("error: cannot rename %s to %s: %s", tmp, l->flash_path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    ota_version_format(l->factory_version, ver);
    say("factory: %s programmed into slot A as version %s (%u bytes with the header); "
        "flash %u KiB, slots of %u KiB",
        l->factory_path, ver, (unsigned)total, OTTER_DEV_FLASH_SIZE / 1024u,
        (unsigned)(l->port_cfg.layout.slot_size / 1024u));
    return 0;
}

/* Copy the executable of a slot (after its header) to path. */
static int extract(launcher_t *l, uint8_t slot, const char *path, uint32_t *size)
{
    const ota_flash_t *f = &l->port_cfg.flash;
    uint32_t base = l->port_cfg.layout.slot_addr[slot];
    uint8_t head[OTA_IMAGE_HEADER_SIZE];
    ota_image_header_t hdr;
    uint8_t *buf;
    int rc;
    if (f->read(f->ctx, base, head, sizeof head) != OTA_OK ||
        ota_image_header_decode(head, sizeof head, &hdr) != OTA_OK ||
        hdr.image_size > l->port_cfg.layout.slot_size) {
        say("error: slot %s holds no image header", otter_dev_slot_name(slot));
        return -1;
    }
    *size = hdr.image_size - OTA_IMAGE_HEADER_SIZE;
    buf = malloc(*size + 1u);
    if (buf == NULL || f->read(f->ctx, base + OTA_IMAGE_HEADER_SIZE, buf, *size) != OTA_OK) {
        free(buf);
        say("error: cannot read slot %s", otter_dev_slot_name(slot));
        return -1;
    }
    rc = otter_dev_write_file(path, buf, *size, 0755u);
    free(buf);
    if (rc != 0) {
        say("error: cannot write %s: %s", path, strerror(errno));
    }
    return rc;
}

/* One boot: decide, extract, hand over. Returns the decision in *boot. */
static int prepare_boot(launcher_t *l, char *exe, size_t exe_cap, ota_boot_result_t *boot)
{
    uint8_t scratch[256];
    ota_boot_config_t bc;
    uint32_t size = 0;
    char ver[24];
    ota_err_t err;
    int n;
    if (open_flash(l, l->flash_path) != 0) {
        return -1;
    }
    memset(boot, 0, sizeof *boot);
    boot->slot = OTA_BOOT_NO_SLOT;
    err =
        ota_port_flash_boot_config(&l->port_cfg, &l->port_cfg.flash, scratch, sizeof scratch, &bc);
    if (err == OTA_OK) {
        bc.device_type_tag = type_tag(l); /* images of other types never boot */
        err = ota_boot_decide(&bc, boot);
    }
    if (boot->slot > 1u) {
        say("error: the bootloader found nothing it may boot: %s", ota_err_str(err));
        ota_flashsim_close(&l->sim);
        return -2;
    }
    if (err != OTA_OK) {
        say("warning: boot decision: %s; booting the committed image", ota_err_str(err));
    }
    n = snprintf(exe, exe_cap, "%s/firmware-%s", l->state_dir, otter_dev_slot_name(boot->slot));
    if (n < 0 || (size_t)n >= exe_cap || extract(l, boot->slot, exe, &size) != 0 ||
        otter_dev_handover_write(l->boot_path, boot) != 0) {
        ota_flashsim_close(&l->sim);
        return -1;
    }
    ota_flashsim_close(&l->sim);
    ota_version_format(boot->version, ver);
    if (boot->pending) {
        unsigned left = boot->record.attempts_left;
        say("boot: slot %s, version %s, trial (attempt %u of %u), %u bytes",
            otter_dev_slot_name(boot->slot), ver, OTTER_DEV_MAX_ATTEMPTS - left,
            OTTER_DEV_MAX_ATTEMPTS, (unsigned)size);
    } else {
        say("boot: slot %s, version %s, %s, %u bytes", otter_dev_slot_name(boot->slot), ver,
            boot->record.state == OTA_BOOT_STATE_REVERTED ? "committed (new image reverted)"
                                                          : "committed",
            (unsigned)size);
    }
    return 0;
}

/* Called with SIGTERM and SIGINT blocked (old mask in *restore): the child
 * sets their default actions before it unblocks them, so a SIGTERM passed on
 * before the exec is not caught by the launcher's handler in the child. */
static pid_t start_firmware(launcher_t *l, const char *exe, const sigset_t *restore)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)exe,
                        (char *)"--config",
                        (char *)l->config_path,
                        (char *)"--flash",
                        (char *)l->flash_path,
                        (char *)"--boot",
                        l->boot_path,
                        (char *)"--status",
                        l->status_path,
                        NULL};
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigprocmask(SIG_SETMASK, restore, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127); /* the launcher died before PR_SET_PDEATHSIG */
        }
        execv(exe, argv);
        fprintf(stderr, "otter-device: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    return pid;
}

static void usage(FILE *to)
{
    fprintf(to, "usage: otter-device --flash FILE --factory FW_EXECUTABLE --config FILE\n"
                "                    [--factory-version X.Y.Z] [--state-dir DIR] [--log-dir DIR]\n"
                "\n"
                "Runs a simulated device whose flash lives in FILE (created on first use with\n"
                "the factory executable in slot A, version 1.0.0 unless --factory-version).\n"
                "State (extracted firmware) goes to --state-dir (default FILE.d); with\n"
                "--log-dir the console goes to DIR/device.log. See docs/DEVICE.md.\n");
}

int main(int argc, char **argv)
{
    launcher_t *l = &g_l;
    char err[512], exe[OTTER_DEV_PATH_MAX + 32], t0[32];
    struct sigaction sa;
    struct stat st;
    int crashes = 0;
    long pem_len;
    int n;

    l->factory_version = ota_version_make(1, 0, 0);
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return OTTER_DEV_EXIT_OK;
        }
        if (v == NULL) {
            usage(stderr);
            return OTTER_DEV_EXIT_USAGE;
        }
        if (strcmp(argv[i], "--flash") == 0) {
            l->flash_path = v;
        } else if (strcmp(argv[i], "--factory") == 0) {
            l->factory_path = v;
        } else if (strcmp(argv[i], "--config") == 0) {
            l->config_path = v;
        } else if (strcmp(argv[i], "--state-dir") == 0) {
            l->state_dir = v;
        } else if (strcmp(argv[i], "--log-dir") == 0) {
            l->log_dir = v;
        } else if (strcmp(argv[i], "--factory-version") == 0) {
            if (ota_version_parse(v, &l->factory_version) != 0) {
                fprintf(stderr, "otter-device: bad --factory-version '%s' (want X.Y.Z)\n", v);
                return OTTER_DEV_EXIT_USAGE;
            }
        } else {
            usage(stderr);
            return OTTER_DEV_EXIT_USAGE;
        }
    }
    if (l->flash_path == NULL || l->config_path == NULL) {
        usage(stderr);
        return OTTER_DEV_EXIT_USAGE;
    }
    if (l->log_dir != NULL) {
        char log[OTTER_DEV_PATH_MAX + 16];
        int fd;
        n = snprintf(log, sizeof log, "%s/device.log", l->log_dir);
        if (n < 0 || (size_t)n >= sizeof log || (mkdir(l->log_dir, 0755) != 0 && errno != EEXIST) ||
            (fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0) {
            fprintf(stderr, "otter-device: cannot open the log in %s\n", l->log_dir);
            return OTTER_DEV_EXIT_ERROR;
        }
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(t0, sizeof t0, "%llu", (unsigned long long)otter_dev_mono_ms());
    setenv("OTTER_DEVICE_T0", t0, 1);

    if (otter_dev_config_load(l->config_path, &l->cfg, err, sizeof err) != 0) {
        say("error: %s", err);
        return OTTER_DEV_EXIT_ERROR;
    }
    pem_len = otter_dev_read_file(l->cfg.codesign_cert, (char *)l->pem, sizeof l->pem);
    if (pem_len <= 0) {
        say("error: cannot read the code-signing certificate %s", l->cfg.codesign_cert);
        return OTTER_DEV_EXIT_ERROR;
    }
    l->signer.name = l->cfg.cert_name;
    l->signer.pem = l->pem;
    l->signer.pem_len = (size_t)pem_len;

    if (l->state_dir == NULL) {
        n = snprintf(l->state_buf, sizeof l->state_buf, "%s.d", l->flash_path);
        if (n < 0 || (size_t)n >= sizeof l->state_buf) {
            return OTTER_DEV_EXIT_USAGE;
        }
        l->state_dir = l->state_buf;
    }
    n = snprintf(l->boot_path, sizeof l->boot_path, "%s.boot", l->flash_path);
    int n2 = snprintf(l->status_path, sizeof l->status_path, "%s.status", l->flash_path);
    if (n < 0 || (size_t)n >= sizeof l->boot_path || n2 < 0 ||
        (size_t)n2 >= sizeof l->status_path) {
        say("error: flash path too long");
        return OTTER_DEV_EXIT_USAGE;
    }
    if (mkdir(l->state_dir, 0755) != 0 && errno != EEXIST) {
        say("error: cannot create the state folder %s: %s", l->state_dir, strerror(errno));
        return OTTER_DEV_EXIT_ERROR;
    }

    if (stat(l->flash_path, &st) != 0 || st.st_size == 0) {
        if (l->factory_path == NULL) {
            say("error: %s does not exist: give --factory to make a new device", l->flash_path);
            return OTTER_DEV_EXIT_USAGE;
        }
        if (make_flash(l) != 0) {
            return OTTER_DEV_EXIT_ERROR;
        }
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    while (!g_term) {
        ota_boot_result_t boot;
        sigset_t term_set, old_set;
        int status = 0, rc;
        pid_t pid;
        rc = prepare_boot(l, exe, sizeof exe, &boot);
        if (rc != 0) {
            return rc == -2 ? OTTER_DEV_EXIT_NO_IMAGE : OTTER_DEV_EXIT_ERROR;
        }
        /* g_child is set before a SIGTERM can reach on_term again. */
        sigemptyset(&term_set);
        sigaddset(&term_set, SIGTERM);
        sigaddset(&term_set, SIGINT);
        sigprocmask(SIG_BLOCK, &term_set, &old_set);
        if (g_term) {
            sigprocmask(SIG_SETMASK, &old_set, NULL);
            break;
        }
        pid = start_firmware(l, exe, &old_set);
        if (pid < 0) {
            int e = errno;
            sigprocmask(SIG_SETMASK, &old_set, NULL);
            say("error: cannot start the firmware: %s", strerror(e));
            return OTTER_DEV_EXIT_ERROR;
        }
        g_child = pid;
        sigprocmask(SIG_SETMASK, &old_set, NULL);
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                say("error: waitpid: %s", strerror(errno));
                return OTTER_DEV_EXIT_ERROR;
            }
        }
        g_child = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == OTTER_FW_EXIT_RESET) {
            say("firmware reset");
            crashes = 0;
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == OTTER_FW_EXIT_POWER_OFF) {
            say("powered off");
            return OTTER_DEV_EXIT_OK;
        } else if (WIFEXITED(status)) {
            say("firmware halted (exit code %d); powering off", WEXITSTATUS(status));
            return OTTER_DEV_EXIT_ERROR;
        } else if (WIFSIGNALED(status)) {
            if (g_term) {
                say("powered off (firmware ended by signal %d)", WTERMSIG(status));
                return OTTER_DEV_EXIT_OK;
            }
            say("firmware crashed (signal %d: %s); booting again", WTERMSIG(status),
                strsignal(WTERMSIG(status)));
            if (!boot.pending && ++crashes >= CRASHLOOP_LIMIT) {
                say("error: the committed image crashed %d times in a row; stopping", crashes);
                return OTTER_DEV_EXIT_CRASHLOOP;
            }
        }
    }
    say("powered off");
    return OTTER_DEV_EXIT_OK;
}
