"""xbarsim.training"""
