/*
 * otter: the MQTT streams data plane (AWS IoT MQTT-based file delivery).
 *
 * Requests go to $aws/things/<thing>/streams/<stream>/get/cbor as a CBOR map
 * with a block bitmap; blocks come back one per message on .../data/cbor and
 * refusals on .../rejected/cbor, which the agent subscribes to so that it
 * fails (or backs off, when throttled) at once with the service's reason.
 */
#include <string.h>

#include "ota_cbor.h"
#include "ota_data_plane.h"

/* Client token of block requests; echoed by the service. */
static const char ota_mqtt_client_token[] = "otter";

/* The stream's topics the agent subscribes to: its blocks and its refusals. */
#define OTA_MQTT_TOPICS ((1u << OTA_JOBS_STREAM_DATA) | (1u << OTA_JOBS_STREAM_REJECTED))

static ota_err_t ota_mqtt_open(ota_agent_t *a)
{
    return ota_jobs_follow(&a->jobs, OTA_MQTT_TOPICS, a->job.stream, 1);
}

static void ota_mqtt_close(ota_agent_t *a)
{
    (void)ota_jobs_follow(&a->jobs, OTA_MQTT_TOPICS, a->job.stream, 0);
}

static ota_err_t ota_mqtt_request(ota_agent_t *a, const ota_block_request_t *r)
{
    ota_jobs_t *j = &a->jobs;
    const ota_job_t *job = &a->job;
    ota_cbor_get_stream_t req;
    size_t len = 0;
    ota_err_t err;

    req.client_token = ota_mqtt_client_token;
    req.file_id = job->file_id;
    req.block_size = a->dl.block_size;
    req.block_offset = r->offset;
    req.num_blocks = r->count;
    req.bitmap = r->bitmap;
    req.bitmap_len = r->bitmap_len;
    req.has_stream_version = 0;
    req.stream_version = 0;
    j->report_len = 0; /* the message no longer holds the last status update */
    err = ota_cbor_encode_get_stream(&req, j->message, sizeof j->message, &len);
    return err != OTA_OK ? err
                         : ota_jobs_send(j, OTA_JOBS_STREAM_GET, job->stream, j->message, len, 0);
}

static void ota_mqtt_handle(const ota_agent_t *a, const char *topic, size_t topic_len,
                            const uint8_t *payload, size_t len, ota_plane_event_t *ev)
{
    const ota_jobs_t *j = &a->jobs;
    const ota_job_t *job = &a->job;
    unsigned kind = ota_jobs_match(j, topic, topic_len, job->stream, OTA_MQTT_TOPICS);
    memset(ev, 0, sizeof *ev);
    if (kind == OTA_JOBS_STREAM_DATA + 1u) {
        ota_cbor_data_block_t block;
        ev->kind = OTA_PLANE_BAD;
        if (ota_cbor_decode_data_block(payload, len, &block) == OTA_OK) {
            ev->kind = OTA_PLANE_BLOCK;
            ev->file_id = block.file_id;
            ev->index = block.block_index;
            ev->data = block.payload;
            ev->len = block.payload_len;
        }
    } else if (kind == OTA_JOBS_STREAM_REJECTED + 1u) {
        ota_cbor_rejected_t rej;
        ev->kind = OTA_PLANE_REFUSED;
        /* A refusal we cannot read is still a refusal. */
        ev->code = "undecodable";
        ev->code_len = 11u;
        if (ota_cbor_decode_rejected(payload, len, &rej) == OTA_OK) {
            ev->code = rej.code;
            ev->code_len = rej.code_len;
        }
    }
}

const ota_data_plane_t ota_data_plane_mqtt = {
#if OTA_HTTP_PLANE
    "mqtt",
#endif
    ota_mqtt_open,
    ota_mqtt_request,
    ota_mqtt_handle,
    ota_mqtt_close,
#if OTA_HTTP_PLANE
    NULL,
    NULL,
#endif
};

const ota_data_plane_t *ota_data_plane_for(const ota_agent_t *a, const ota_data_plane_t * not )
{
    const ota_data_plane_t *mqtt =
        (a->job.protocols & OTA_PROTO_MQTT) != 0u ? &ota_data_plane_mqtt : NULL;
#if OTA_HTTP_PLANE
    const ota_data_plane_t *http =
        (a->job.protocols & OTA_PROTO_HTTP) != 0u && a->job.url[0] != '\0' &&
                a->cfg.http.transport.send != NULL && a->cfg.http.transport.recv != NULL
            ? &ota_data_plane_http
            : NULL;
    if (a->job.first_protocol == OTA_PROTO_HTTP && http != NULL && http != not ) {
        return http;
    }
    if (mqtt == NULL || mqtt == not ) {
        return http != not ? http : NULL;
    }
#else
    if (mqtt == not ) {
        return NULL;
    }
#endif
    return mqtt;
}
