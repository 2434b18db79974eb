"""Request and response models: separate input and output models, units in field names."""
