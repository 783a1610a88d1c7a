/* manifest: to be written */
