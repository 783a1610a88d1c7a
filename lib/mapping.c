/* mapping: to be written */
