/* The run-time versions of the libraries the benchmarks link, for the
 * machine description in bench/RESULTS.md. */
#include <curl/curl.h>
#include <json-c/json.h>
#include <mbedtls/version.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>

#include "integrations/integrations.h"

int main(void)
{
    char mbed[32];
    mbedtls_version_get_string(mbed);
    curl_version_info_data *c = curl_version_info(CURLVERSION_NOW);
    printf("libintegrations=%s\nsqlite=%s\ncurl=%s\njson-c=%s\nsodium=%s\nmbedtls=%s\n", integ_version(),
           sqlite3_libversion(), c->version, json_c_version(), sodium_version_string(), mbed);
    return 0;
}
