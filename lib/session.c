/* session: to be written */
