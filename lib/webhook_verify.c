/* webhook_verify: to be written */
