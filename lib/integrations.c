/* integrations: to be written */
