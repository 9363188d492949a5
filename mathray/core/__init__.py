"""Pure logic shared by every job: no Ray, no engines, no storage (torch only in ``readout``/``losses``)."""
