/* definitions: to be written */
