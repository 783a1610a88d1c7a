/* http: to be written */
