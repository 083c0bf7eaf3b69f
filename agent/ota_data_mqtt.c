/*
 * otter: the MQTT streams data plane (AWS IoT MQTT-based file delivery).
 *
 * Requests go to $aws/things/<thing>/streams/<stream>/get/cbor as a CBOR map
 * with a block bitmap; blocks come back one per message on .../data/cbor and
 * refusals on .../rejected/cbor, which the agent subscribes to so that it
 * fails at once with the service's reason.
 */
#include <string.h>

#include "ota_agent_internal.h"
#include "ota_cbor.h"

/* Largest bitmap one request carries: a window spans at most this many blocks. */
#define OTA_MQTT_BITMAP_MAX 64u

/* Client token of block requests; echoed by the service. */
static const char ota_mqtt_client_token[] = "otter";

static ota_err_t ota_mqtt_stream_topic(ota_agent_t *agent, const char *suffix)
{
    return ota_agent_topic(agent, "streams/", agent->job.stream, suffix);
}

static const char *const ota_mqtt_suffixes[] = {"/data/cbor", "/rejected/cbor"};

/* Subscribes to (or, with subscribe 0, unsubscribes from) the stream's topics. */
static ota_err_t ota_mqtt_subscription(ota_agent_t *agent, int subscribe)
{
    for (size_t i = 0; i < 2u; i++) {
        ota_err_t err = ota_mqtt_stream_topic(agent, ota_mqtt_suffixes[i]);
        if (err != OTA_OK) {
            return err;
        }
        if (!subscribe) {
            (void)agent->cfg.mqtt.unsubscribe(agent->cfg.mqtt.ctx, agent->topic);
        } else if (agent->cfg.mqtt.subscribe(agent->cfg.mqtt.ctx, agent->topic, 0) != OTA_OK) {
            return OTA_ERR_MQTT;
        }
    }
    return OTA_OK;
}

static ota_err_t ota_mqtt_open(ota_agent_t *agent)
{
    return ota_mqtt_subscription(agent, 1);
}

static void ota_mqtt_close(ota_agent_t *agent)
{
    (void)ota_mqtt_subscription(agent, 0);
}

static ota_err_t ota_mqtt_request(ota_agent_t *agent, uint32_t first, uint32_t count,
                                  uint32_t *next, uint32_t *asked)
{
    const uint8_t *done = OTA_AGENT_BITMAP(agent);
    uint8_t bitmap[OTA_MQTT_BITMAP_MAX];
    uint32_t offset = OTA_MAX_FILE_BLOCKS;
    uint32_t wanted = 0;
    uint32_t end = 0; /* after the last wanted block */
    uint32_t k = first;
    ota_cbor_get_stream_t req;
    size_t len = 0;
    ota_err_t err;

    memset(bitmap, 0, sizeof bitmap);
    for (; k < agent->block_count && wanted < count; k++) {
        if (ota_bit_get(done, k)) {
            continue;
        }
        if (wanted == 0u) {
            offset = k;
        } else if (k - offset >= OTA_MQTT_BITMAP_MAX * 8u) {
            break;
        }
        ota_bit_set(bitmap, k - offset);
        wanted++;
        end = k + 1u;
    }
    *next = k;
    *asked = wanted;
    if (wanted == 0u) {
        return OTA_OK;
    }
    req.client_token = ota_mqtt_client_token;
    req.file_id = agent->job.file_id;
    req.block_size = agent->block_size;
    req.block_offset = offset;
    req.num_blocks = wanted;
    req.bitmap = bitmap;
    req.bitmap_len = OTA_BITMAP_BYTES(end - offset);
    req.has_stream_version = 0;
    req.stream_version = 0;
    err = ota_cbor_encode_get_stream(&req, agent->message, sizeof agent->message, &len);
    if (err != OTA_OK) {
        return err;
    }
    err = ota_mqtt_stream_topic(agent, "/get/cbor");
    if (err != OTA_OK) {
        return err;
    }
    if (agent->cfg.mqtt.publish(agent->cfg.mqtt.ctx, agent->topic, agent->message, len, 0) !=
        OTA_OK) {
        return OTA_ERR_MQTT;
    }
    return OTA_OK;
}

static int ota_mqtt_handle(ota_agent_t *agent, const char *topic, size_t topic_len,
                           const uint8_t *payload, size_t len)
{
    if (ota_agent_topic_is(agent, topic, topic_len, "streams/", agent->job.stream,
                           ota_mqtt_suffixes[0])) {
        ota_cbor_data_block_t block;
        ota_err_t err = ota_cbor_decode_data_block(payload, len, &block);
        if (err != OTA_OK) {
            ota_agent_bad_message(agent, "undecodable block message", err);
        } else {
            ota_agent_block(agent, block.file_id, block.block_index, block.payload,
                            block.payload_len);
        }
        return 1;
    }
    if (ota_agent_topic_is(agent, topic, topic_len, "streams/", agent->job.stream,
                           ota_mqtt_suffixes[1])) {
        ota_cbor_rejected_t rej;
        ota_err_t err = ota_cbor_decode_rejected(payload, len, &rej);
        if (err != OTA_OK) {
            /* A refusal we cannot read is still a refusal. */
            ota_agent_data_refused(agent, "undecodable", 11u);
        } else {
            ota_agent_data_refused(agent, rej.code, rej.code_len);
        }
        return 1;
    }
    return 0;
}

const ota_data_plane_t ota_data_plane_mqtt = {
    ota_mqtt_open,
    ota_mqtt_request,
    ota_mqtt_handle,
    ota_mqtt_close,
};
