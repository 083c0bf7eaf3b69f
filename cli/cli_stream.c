/* otter CLI: `stream describe`, what DescribeStream answers a device. */
#include <stdio.h>

#include "cli_cmds.h"
#include "cli_json.h"
#include "ota_store.h"

int cli_cmd_stream_describe(const cli_ctx_t *ctx, int argc, char **argv)
{
    const char *arg = NULL;
    ota_store_t *store = NULL;
    int rc = cli_one_arg_with_store(
        ctx, argc, argv,
        "usage: otter stream describe STREAM_ID\n\nShow a stream's version, description "
        "and files (file id, size, stored path).\n",
        "stream describe needs a STREAM_ID; see 'otter job show ID'", &arg, &store);
    if (rc != CLI_EXIT_OK) {
        return rc == CLI_DONE ? CLI_EXIT_OK : rc;
    }
    ota_store_stream_t s;
    if (ota_store_stream_get(store, arg, &s) != OTA_STORE_OK) {
        ota_store_close(store);
        return cli_fail(CLI_EXIT_FAIL,
                        "unknown stream '%s'; 'otter job show ID' names a job's "
                        "stream",
                        arg);
    }
    if (ctx->json) {
        rc = cli_json_stream_describe(&s);
        ota_store_stream_free(&s);
        ota_store_close(store);
        return rc;
    }
    char when[24];
    cli_format_time(s.created_ms, when);
    printf("stream:      %s\nversion:     %lld\ndescription: %s\ncreated:     %s\nfiles:\n",
           s.stream_id, (long long)s.version, s.description, when);
    for (size_t i = 0; i < s.n_files; i++) {
        printf("  file id %u: %llu bytes  %s\n", s.files[i].file_id,
               (unsigned long long)s.files[i].size, s.files[i].path);
    }
    ota_store_stream_free(&s);
    ota_store_close(store);
    return CLI_EXIT_OK;
}
