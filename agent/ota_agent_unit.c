/*
 * otter: the agent compiled as one unit (see ota_module.h). Each module stays
 * in its own file; this unit includes them, lowest layer first, so that the
 * functions they offer one another have internal linkage. It is the file a
 * build compiles (agent/otter_agent_files.txt).
 */
#define OTA_MODULE static

#include "ota_base64.c"
#include "ota_cbor.c"
#include "ota_job_doc.c"
#include "src/ota_download.c"
#include "src/ota_jobs.c"
#include "src/ota_progress.c"
#include "src/ota_data_mqtt.c"
#include "src/ota_data_http.c"
#include "src/ota_agent.c"
