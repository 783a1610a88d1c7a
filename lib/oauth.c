/* oauth: to be written */
