/* store_sqlite: to be written */
