"""Small bundled word lists for PII detection (no downloads, no data files to lose).

``COMMON_FIRST_NAMES`` and ``COMMON_SURNAMES`` are frequent given names and surnames in US schools
(English, Hispanic, Asian, African and Middle-Eastern origins); they let the column classifier judge
whether a column's values look like names, and give the text scanner names that are not on the
file's roster. ``NAME_LIKE_WORDS`` are ordinary English words that are also names ("Will", "May",
"Grace", "Brown") or places and schools ("Washington", "Lincoln"): at the start of a sentence they are
usually the word, so the scanner takes them there only next to another name or after a title ("Will
Smith", "Ms. May"); the bundled lists never contribute them.
"""

from __future__ import annotations

COMMON_FIRST_NAMES: frozenset[str] = frozenset(
    """
    Aaliyah Aaron Abigail Adam Adrian Adriana Ahmed Aiden Aisha Alejandro Alexa Alexander Alexis Ali
    Alicia Alyssa Amanda Amelia Amir Ana Andrea Andrew Andrés Angel Angela Anh Anika Anna Anthony Antonio
    Aria Ariana Arjun Ashley Ava Avery Ayesha Benjamin Bianca Brandon Brianna Brian Bryan Caleb Camila
    Carlos Carmen Carter Catalina Charlotte Chloe Christopher Claire Daniel Daniela David Deja Derek Diana
    Diego Dylan Eduardo Elena Eli Elijah Elizabeth Ella Emily Emma Eric Esteban Ethan Evelyn Fatima
    Fernanda Francisco Gabriel Gabriela Genesis Gianna Guadalupe Hannah Harper Hassan Hector Hiroshi Hugo
    Ibrahim Isaac Isabella Isaiah Ivan Jacob Jada Jamal Jasmine Javier Jayden Jennifer Jessica Jesús Jin
    Jonathan Jordan Jorge José Joseph Joshua Juan Julia Julian Justin Kai Kaitlyn Karen Karina Kayla Kevin
    Khalil Kimberly Laila Layla Leah Leonardo Liam Lily Linh Logan Lucas Lucía Luis Luna Madison Malik
    Manuel Marco María Maria Mariana Marisol Mateo Matthew Maya Mei Mia Michael Michelle Miguel Minh
    Mohammed Muhammad Natalia Natalie Nathan Nevaeh Nguyen Nicholas Nicole Noah Nora Olivia Omar Oscar
    Pablo Paola Pedro Priya Rafael Rahul Raúl Ricardo Riya Roberto Rosa Ryan Samantha Samuel Santiago
    Sara Sarah Sebastián Sebastian Seo-yeon Sergio Sofía Sofia Sophia Stephanie Tariq Thomas Tyler Valentina
    Valeria Vanessa Victor Vivian Wei Xavier Ximena Yasmin Yuki Yusuf Zainab Zoe
    """.split()  # noqa: SIM905
)

COMMON_SURNAMES: frozenset[str] = frozenset(
    """
    Abdullah Acosta Adams Aguilar Ahmed Alexander Ali Allen Alvarez Anderson Baker Banerjee Bautista
    Bennett Bui Castillo Castro Chavez Chen Cho Choi Clark Collins Cruz Dang Davis Delgado Díaz Diaz Do
    Dominguez Edwards Espinoza Evans Flores Garcia García Gomez Gómez Gonzalez González Gupta Gutierrez
    Gutiérrez Hall Harris Hernandez Hernández Herrera Hoang Huang Huynh Ibrahim Jackson Jimenez Jiménez
    Johnson Jones Khan Kim Kumar Lam Le Lee Lewis Li Lin Liu Lopez López Martin Martinez Martínez Medina
    Mendoza Miller Mitchell Moore Morales Moreno Murphy Nakamura Nelson Ng Nguyen Nunez Núñez O'Brien
    O'Connor Okafor Ortiz Park Patel Perez Pérez Pham Phillips Ramirez Ramírez Ramos Reyes Rivera
    Roberts Robinson Rodriguez Rodríguez Romero Ruiz Salazar Sanchez Sánchez Santos Shah Sharma Silva
    Singh Smith Soto Suzuki Tanaka Taylor Thomas Thompson Torres Tran Truong Turner Vargas Vasquez Vo
    Vu Walker Wang Washington Williams Wilson Wong Wu Yamamoto Yang Zhang Zhao
    """.split()  # noqa: SIM905
)

# Capitalized at the start of a sentence these are words far more often than names.
NAME_LIKE_WORDS: frozenset[str] = frozenset(
    """
    A About After Again All Also Am An And Any April Are Art As Ask At August Autumn Be Bell Bill Black
    Bo Brook Brooks Brown But By Call Can Case Chance Chase Christian Cook Day Dawn Do Don Done Early
    Ed Fall Faith For Ford Frank Friday From Gale Glad Gold Golden Grace Gray Green Grey Guy Hall He Her
    Heath Hill His Holly Honor Hope How Hunter I If In Is It Ivy Jack Jade January Jewel Joy July June
    Just King Lane Le Long Love Major March Mark Mason May Me Miles Millie Monday Mr Ms My New Next No
    Nor Not Now Of On Or Page Parent Park Pat Patience Pearl Per Price Prince Rain Ray Reed Rich River
    Rock Rose Ruby Rush Sage Saturday Say See She Sky So Spring Star Stone Summer Sunday Sunny Tad Teacher
    The Then They This Thursday To Today Trust Tuesday Up Us Victory Wade Ward We Wednesday West White
    Will Win Winter With Wood Word Work Yes You Young Grant Dean Bishop Earl Gene Glen Jay Lincoln Drew
    Max Pierce Marshall Harmony Destiny Trinity Journey Justice Liberty Royal Sterling Story Melody
    Amber Crystal Ginger Penny Robin Violet Iris Daisy Willow Olive Cash Colt Rusty Forrest Sue
    Washington Jackson Madison Jordan Lincoln Houston Austin Dallas Denver Florence Georgia Virginia
    Carolina Kennedy Roosevelt Jefferson Franklin Hamilton Regan Reagan Stanford Harvard Cornell Brown
    """.split()  # noqa: SIM905
)
