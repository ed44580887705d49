"""crossgroup.crypto"""
