"""What each entry point does with one model: train, quant and infer, with the measuring and the charts they share.

Above the integrations (tracking, data, yolo, backends, mot, registry); below orchestration."""
