/* ctx: to be written */
