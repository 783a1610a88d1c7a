/* crypto: to be written */
