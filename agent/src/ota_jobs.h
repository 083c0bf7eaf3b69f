/*
 * otter: the agent's side of the AWS IoT Jobs API (private to the agent):
 * topics, subscriptions, $next/get, status reports, and which answer an
 * incoming topic is. Status payloads follow the FreeRTOS agent byte for byte
 * ({"status":"IN_PROGRESS","statusDetails":{"receive":"1/3"}}), because
 * devices and AWS tooling read them back; the agent only adds a "detail" key.
 */
#ifndef OTA_JOBS_H
#define OTA_JOBS_H

#include "ota_module.h"

#include "otter/ota_config_defaults.h"

#include <stddef.h>
#include <stdint.h>

#include "otter/ota_agent.h"

/** What an incoming topic is. */
typedef enum ota_jobs_topic {
    OTA_JOBS_TOPIC_OTHER = 0,       /**< not a Jobs API topic of this agent */
    OTA_JOBS_TOPIC_NEXT,            /**< notify-next or $next/get/accepted: names the next job */
    OTA_JOBS_TOPIC_NEXT_REJECTED,   /**< $next/get/rejected */
    OTA_JOBS_TOPIC_UPDATE_REJECTED, /**< the current job's update/rejected */
} ota_jobs_topic_t;

/** Prepare the Jobs link of a thing over an MQTT interface (both copied or borrowed). */
OTA_MODULE void ota_jobs_init(ota_jobs_t *j, const char *thing_name, const ota_mqtt_t *mqtt);

/** Ask for the next job ($next/get). @return OTA_OK; OTA_ERR_MQTT. */
OTA_MODULE ota_err_t ota_jobs_ask_next(ota_jobs_t *j);

/**
 * Publish {"status":status,"statusDetails":{"k0":"v0","k1":"v1"}} (k1 NULL:
 * only the first entry) on the job's update topic with QoS qos; values are
 * escaped as JSON strings.
 * @return OTA_OK; OTA_ERR_OUT_OF_MEMORY; OTA_ERR_MQTT.
 */
OTA_MODULE ota_err_t ota_jobs_report(ota_jobs_t *j, const char *job_id, const char *status,
                                     const char *k0, const char *v0, const char *k1, const char *v1,
                                     uint8_t qos);

/**
 * Publish the last status update again (its bytes are kept in j->message
 * until something else is built there) on job_id's update topic.
 * @return OTA_OK; OTA_ERR_NOT_FOUND (the message was reused); OTA_ERR_OUT_OF_MEMORY;
 * OTA_ERR_MQTT.
 */
OTA_MODULE ota_err_t ota_jobs_report_again(ota_jobs_t *j, const char *job_id, uint8_t qos);

/** What topic (topic_len bytes) is, for the current job_id (NULL: none). */
OTA_MODULE ota_jobs_topic_t ota_jobs_classify(const ota_jobs_t *j, const char *job_id,
                                              const char *topic, size_t topic_len);

/** 1 if a Jobs API refusal carries code as a JSON string. */
OTA_MODULE int ota_jobs_refusal_is(const uint8_t *payload, size_t len, const char *code);

/**
 * The topics the agent uses, after "$aws/things/<thing>/" (id: the job id or
 * stream name passed with the kind); a set of them is a mask of 1 << kind.
 */
typedef enum ota_jobs_kind {
    OTA_JOBS_NOTIFY_NEXT = 0, /**< jobs/notify-next */
    OTA_JOBS_NEXT_ACCEPTED,   /**< jobs/$next/get/accepted */
    OTA_JOBS_NEXT_REJECTED,   /**< jobs/$next/get/rejected */
    OTA_JOBS_UPDATE_REJECTED, /**< jobs/<id>/update/rejected */
    OTA_JOBS_STREAM_DATA,     /**< streams/<id>/data/cbor (this and the next: QoS 0) */
    OTA_JOBS_STREAM_REJECTED, /**< streams/<id>/rejected/cbor */
    OTA_JOBS_STREAM_GET,      /**< streams/<id>/get/cbor */
    OTA_JOBS_NEXT_GET,        /**< jobs/$next/get */
    OTA_JOBS_UPDATE           /**< jobs/<id>/update */
} ota_jobs_kind_t;

/** notify-next and both answers to $next/get: the topics that tell of the next job. */
#define OTA_JOBS_NEXT_TOPICS                                                                       \
    ((1u << OTA_JOBS_NOTIFY_NEXT) | (1u << OTA_JOBS_NEXT_ACCEPTED) | (1u << OTA_JOBS_NEXT_REJECTED))

/**
 * Build the topic of kind (with id) into j->topic.
 * @return OTA_OK; OTA_ERR_OUT_OF_MEMORY (does not fit).
 */
OTA_MODULE ota_err_t ota_jobs_topic(ota_jobs_t *j, unsigned kind, const char *id);

/**
 * The first kind in the mask kinds (with id) that topic (topic_len bytes) is,
 * plus 1, or 0 for none (nothing is built).
 */
OTA_MODULE unsigned ota_jobs_match(const ota_jobs_t *j, const char *topic, size_t topic_len,
                                   const char *id, unsigned kinds);

/**
 * Subscribe to (on 1) or unsubscribe from (on 0) the topics of the mask kinds
 * (with id), in the order of the kinds: Jobs topics at QoS 1, streams at QoS
 * 0; an unsubscribe that fails is ignored.
 * @return OTA_OK; OTA_ERR_MQTT (a subscribe failed: the rest is not asked);
 *         OTA_ERR_OUT_OF_MEMORY.
 */
OTA_MODULE ota_err_t ota_jobs_follow(ota_jobs_t *j, unsigned kinds, const char *id, int on);

/**
 * Publish len bytes of payload on the topic of kind (with id) at QoS qos.
 * @return OTA_OK; OTA_ERR_OUT_OF_MEMORY (the topic does not fit); OTA_ERR_MQTT.
 */
OTA_MODULE ota_err_t ota_jobs_send(ota_jobs_t *j, unsigned kind, const char *id,
                                   const uint8_t *payload, size_t len, uint8_t qos);

/** Write "0x" + 8 lowercase hex digits of v and a NUL (11 bytes); returns the NUL's place. */
OTA_MODULE char *ota_jobs_hex32(char *out, uint32_t v);

/** Write v in decimal, then sep (unless NUL) and a NUL (at most 12 bytes); returns the NUL's place.
 */
OTA_MODULE char *ota_jobs_dec(char *out, uint32_t v, char sep);

/**
 * Write "v<major>.<minor>.<build>" of a version and a NUL (at most 16 bytes).
 * Not boot/'s ota_version_format: on Cortex-M4 that costs 91 bytes more
 * (its 114 bytes of code against these 40, which reuse ota_jobs_dec), and the
 * text is the same grammar.
 */
OTA_MODULE void ota_jobs_version_str(char *out, uint32_t version);

#endif /* OTA_JOBS_H */
