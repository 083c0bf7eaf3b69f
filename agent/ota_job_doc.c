/* placeholder, replaced by the module */
typedef int ota_placeholder_ota_job_doc;
